"""From the ``data`` and ``clip_sampler`` config groups to records and datasets.

The one place the trainer, the tuner, the evaluator and the scorer turn a config into data, so
they all read, sample and transform clips the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from mer.data.clip import ClipSpec, ClipTransform
from mer.data.dataset import ClipDataset
from mer.data.formats import Annotations, read_annotations
from mer.data.labels import LabelMap, get_label_map
from mer.data.records import ClipRecord
from mer.data.samplers import ClipSampler, build_sampler
from mer.data.splits import Fold, make_folds


def _plain(cfg) -> dict:
    """An OmegaConf node (or dict) as a plain dict."""
    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg or {})


def annotation_path(data_cfg) -> Path:
    """The annotation file of the data config; the synthetic set is generated on first use."""
    if data_cfg.get("synthetic"):
        from mer.data.synthetic import ensure_dataset

        return Path(ensure_dataset(cache_dir=data_cfg.get("cache_dir"), **_plain(data_cfg.synthetic)))
    if not data_cfg.get("annotations"):
        raise ValueError("data.annotations is not set: give the annotation file, e.g. data.annotations=/data/CASME2/coding.xlsx")
    return Path(data_cfg.annotations)


def data_provenance(data_cfg) -> dict:
    """Which data a run trained on: the annotation file and its SHA-256; for a generated set (its
    meta.json names the generator) also the digest of the whole set, videos included, which tells
    whether two machines trained on the same bytes."""
    if not data_cfg.get("synthetic") and not data_cfg.get("annotations"):
        return {"annotations": None}  # records handed to the trainer directly (tests, benchmarks)
    path = annotation_path(data_cfg)
    out = {
        "annotations": str(path),
        "annotations_sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None,
    }
    try:  # a real data set's folder may hold a meta.json of its own
        meta = json.loads((path.parent / "meta.json").read_text())
    except (OSError, ValueError):
        meta = {}
    if isinstance(meta, dict) and meta.get("generator") == "mer.data.synthetic":
        from mer.data.synthetic import dataset_digest

        out |= {"generator_version": meta.get("generator_version"), "synthetic_set_sha256": dataset_digest(path.parent)}
    return out


def load_records(data_cfg, *, label_map: str | LabelMap | None = None) -> Annotations:
    """The records of a data config; ``label_map`` (a name or a LabelMap) instead of ``data.label_map``."""
    return read_annotations(
        annotation_path(data_cfg),
        format=data_cfg.format,
        root=data_cfg.get("root"),
        label_map=label_map or data_cfg.label_map,
        strict=data_cfg.get("strict", True),
        fps=data_cfg.get("fps"),
    )


def class_names(data_cfg) -> list[str]:
    return list(get_label_map(data_cfg.label_map).classes)


def build_clip_sampler(sampler_cfg) -> ClipSampler:
    options = _plain(sampler_cfg)
    return build_sampler(options.pop("name"), **options)


def flow_cache(data_cfg):
    """The disk cache of clip flows (``data.motion.cache``; default folder $MER_CACHE/flows)."""
    motion = data_cfg.get("motion") or {}
    if not motion.get("cache", True):
        return None
    from mer.data.motion import FlowCache
    from mer.data.synthetic.cache import default_cache_dir

    return FlowCache(Path(data_cfg.get("cache_dir") or default_cache_dir()) / "flows")


def build_clip_dataset(
    records: Sequence[ClipRecord], data_cfg, sampler_cfg, *, train: bool, spec: ClipSpec | None = None
) -> ClipDataset:
    """The dataset of ``records``: sampled by ``sampler_cfg``, read as ``data_cfg`` says, and turned
    into model inputs by ``spec`` (a checkpoint's; default: the one ``data_cfg`` describes)."""
    spec = spec or ClipSpec.from_config(OmegaConf.create({"data": data_cfg, "clip_sampler": sampler_cfg}))
    transform = ClipTransform(spec, train=train, augment=_plain(data_cfg.get("augment")) if train else None)
    face = data_cfg.get("face_crop") or {}
    frame_transform = None
    if face.get("enabled", False):  # raw recordings: crop the face first
        from mer.data.faces import FaceCrop

        frame_transform = FaceCrop(spec.source_side, margin=spec.face_margin)
    return ClipDataset(
        records,
        build_clip_sampler(sampler_cfg),
        transform,
        train=train,
        au_list=tuple(data_cfg.aus),
        backend=data_cfg.get("backend", "decord"),
        frame_transform=frame_transform,
        flow_cache=flow_cache(data_cfg) if spec.uses_flow else None,
        skip_broken=True,
    )


def build_folds(records: Sequence[ClipRecord], cv_cfg) -> list[Fold]:
    """The folds of a ``cv`` config (a run's ``config.yaml`` gives back the run's folds)."""
    return make_folds(
        records,
        cv_cfg.protocol,
        folds=cv_cfg.folds or 5,
        test_size=cv_cfg.test_size or 0.25,
        val_fraction=cv_cfg.val_fraction,
        seed=cv_cfg.seed,
    )
