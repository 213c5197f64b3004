"""The synthetic DFME-style micro-expression data set: mer's built-in training data.

    face.py      a subject: face geometry (landmarks) and appearance, sampled per identity
    draw.py      the face drawn once as warpable layers (head, eyes, glasses, background)
    aus.py       action units as displacement fields and wrinkles around the landmarks
    render.py    videos: events (AUs over time), blinks and nuisances at known frames
    long.py      long recordings with several events at known frames, for spotting
    emotions.py  emotions as partial AU prototypes; imbalanced class counts
    settings.py  the generator's settings and their hash
    generator.py clips and the data set on disk (mp4 or frame folders, annotations.csv, meta.json)
    cache.py     the default set, generated once into a cache folder
    cli.py       python -m mer.data.synthetic out_dir=DIR key=value ...

See docs/synthetic.md.
"""

from mer.data.synthetic.aus import AU_MODELS, SUPPORTED_AUS, as_units, displacement_field, wrinkle_map
from mer.data.synthetic.cache import dataset_digest, default_cache_dir, ensure_dataset
from mer.data.synthetic.draw import FaceLayers, render_face
from mer.data.synthetic.emotions import CLASS_ORDER, PROTOTYPES, class_counts, sample_aus
from mer.data.synthetic.face import Identity, sample_identity
from mer.data.synthetic.generator import ClipTask, generate, plan_clips, render_clip, sample_timing, subject_layers
from mer.data.synthetic.long import LongVideoInfo, TrueEvent, read_long_video_info, sample_events, sidecar_path, write_long_video
from mer.data.synthetic.render import Blink, Canvas, Event, Nuisance, iter_video, render_video, sample_blinks
from mer.data.synthetic.settings import GENERATOR_VERSION, SyntheticSettings, make_settings, settings_key

__all__ = [
    "AU_MODELS",
    "SUPPORTED_AUS",
    "as_units",
    "displacement_field",
    "wrinkle_map",
    "dataset_digest",
    "default_cache_dir",
    "ensure_dataset",
    "FaceLayers",
    "render_face",
    "CLASS_ORDER",
    "PROTOTYPES",
    "class_counts",
    "sample_aus",
    "Identity",
    "sample_identity",
    "ClipTask",
    "generate",
    "plan_clips",
    "render_clip",
    "sample_timing",
    "subject_layers",
    "LongVideoInfo",
    "TrueEvent",
    "read_long_video_info",
    "sample_events",
    "sidecar_path",
    "write_long_video",
    "Blink",
    "Canvas",
    "Event",
    "Nuisance",
    "iter_video",
    "render_video",
    "sample_blinks",
    "GENERATOR_VERSION",
    "SyntheticSettings",
    "make_settings",
    "settings_key",
]
