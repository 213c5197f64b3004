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
from mer.data.composite import COMPOSITE, CompositeAnnotations, DatasetSpec, dataset_specs, read_composite, shared_label_map
from mer.data.dataset import ClipDataset
from mer.data.formats import Annotations, format_label_map, read_annotations
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


def annotation_files(data_cfg) -> str | dict[str, str]:
    """What a data config reads, as a report names it: its annotation file, or a composite's {set: file}."""
    if is_composite(data_cfg):
        return {s.name: str(s.annotations) for s in composite_specs(data_cfg)}
    return str(annotation_path(data_cfg))


def file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def data_provenance(data_cfg, records=None) -> dict:
    """Which data a run trained on: the annotation file and its SHA-256; for a generated set (its
    meta.json names the generator) also the digest of the whole set, videos included, which tells
    whether two machines trained on the same bytes. For a composite: each set's file and digest
    (with what was read of it, given its ``records``) and, as ``annotations_sha256``, a digest of
    those digests."""
    if is_composite(data_cfg):
        sets = {
            s.name: {"annotations": str(s.annotations), "annotations_sha256": file_sha256(s.annotations)}
            for s in composite_specs(data_cfg)
        }
        if isinstance(records, CompositeAnnotations):
            for name, read in records.composition().items():
                sets[name] |= read
        combined = "".join(f"{name}:{s['annotations_sha256']}\n" for name, s in sets.items())
        return {"annotations_sha256": hashlib.sha256(combined.encode()).hexdigest(), "datasets": sets}
    if not data_cfg.get("synthetic") and not data_cfg.get("annotations"):
        return {"annotations": None}  # records handed to the trainer directly (tests, benchmarks)
    path = annotation_path(data_cfg)
    out = {"annotations": str(path), "annotations_sha256": file_sha256(path)}
    try:  # a real data set's folder may hold a meta.json of its own
        meta = json.loads((path.parent / "meta.json").read_text())
    except (OSError, ValueError):
        meta = {}
    if isinstance(meta, dict) and meta.get("generator") == "mer.data.synthetic":
        from mer.data.synthetic import dataset_digest

        out |= {"generator_version": meta.get("generator_version"), "synthetic_set_sha256": dataset_digest(path.parent)}
    return out


def is_composite(data_cfg) -> bool:
    return data_cfg.get("format") == COMPOSITE


def composite_specs(data_cfg) -> list[DatasetSpec]:
    """The checked sets of a composite data config (``data.datasets``)."""
    return dataset_specs(_plain(data_cfg.get("datasets")), strict=data_cfg.get("strict", True), fps=data_cfg.get("fps"))


def load_records(data_cfg, *, label_map: str | LabelMap | None = None) -> Annotations:
    """The records of a data config: one annotation file, or each set of a composite (namespaced);
    ``label_map`` (a name or a LabelMap) instead of ``data.label_map``."""
    label_map = label_map or data_cfg.get("label_map")
    if is_composite(data_cfg):
        return read_composite(composite_specs(data_cfg), label_map=label_map)
    return read_annotations(
        annotation_path(data_cfg),
        format=data_cfg.format,
        root=data_cfg.get("root"),
        label_map=label_map,
        strict=data_cfg.get("strict", True),
        fps=data_cfg.get("fps"),
    )


def data_label_map(data_cfg) -> LabelMap:
    """The label map of a data config: ``data.label_map``; null: the format's own (a composite's:
    the own map its sets share, :func:`mer.data.composite.shared_label_map`)."""
    label_map = data_cfg.get("label_map")
    if is_composite(data_cfg):
        return get_label_map(shared_label_map(composite_specs(data_cfg)) if label_map is None else label_map)
    return format_label_map(data_cfg.format, label_map)


def class_names(data_cfg) -> list[str]:
    """The classes of the data config's label map (:func:`data_label_map`)."""
    return list(data_label_map(data_cfg).classes)


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
