"""Composite protocols: several data sets read as one, under one label map (MEGC 2019's CASME II +
SAMM + SMIC-HS with negative / positive / surprise).

    specs = dataset_specs({"casme2": {"format": "casme2", "annotations": "CASME2-coding-20140508.xlsx"},
                           "samm": {"format": "samm", "annotations": "SAMM_Micro_FACS_Codes_v2.xlsx"}})
    records = read_composite(specs, label_map="megc3")
    records[0].subject, records[0].clip_id, records[0].dataset  # 'casme2/sub01', 'casme2/sub01/EP02_01f', 'casme2'
    records.parts["samm"].excluded  # Counter({'others': 26}): what the label map left out of SAMM

Each set is read by its own format's reader with the composite's label map. Subjects and clip ids
are prefixed with the set's name, so subjects of two sets never merge in a subject-independent
split (two sets that both number a subject ``s1`` hold two people) and clip ids stay unique;
``record.dataset`` keeps the set, which predictions.csv and the per-set metrics read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mer.data.formats import FORMATS, Annotations, default_label_map, list_formats, read_annotations
from mer.data.labels import LabelMap
from mer.data.records import ClipRecord

COMPOSITE = "composite"  # the data config's ``format`` when it lists ``datasets``
SET_KEYS = ("format", "annotations", "root", "fps", "strict")  # what a set of a composite may say


@dataclass(frozen=True)
class DatasetSpec:
    """One set of a composite: its name (the namespace of its subjects and clip ids) and how to read it."""

    name: str
    format: str
    annotations: Path
    root: Path | None = None  # default: the annotation file's folder
    fps: float | None = None
    strict: bool = True


class CompositeAnnotations(Annotations):
    """The records of every set, in the order the sets were given; ``parts`` holds each set's own
    (namespaced) records with its ``skipped`` rows and ``excluded`` counts, which the whole sums."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: dict[str, Annotations] = {}

    def add(self, name: str, part: Annotations) -> None:
        self.parts[name] = part
        self.extend(part)
        self.skipped += part.skipped
        self.excluded.update(part.excluded)

    def composition(self) -> dict[str, dict]:
        """Per set: clips and subjects read, emotions the label map excluded, invalid rows skipped."""
        return {
            name: {
                "clips": len(part),
                "subjects": len({r.subject for r in part}),
                "excluded": dict(part.excluded),
                "skipped": len(part.skipped),
            }
            for name, part in self.parts.items()
        }


def _unset(value: object) -> bool:
    return value is None or value == "" or value == "???"  # '???': a mandatory value left unfilled


def dataset_specs(sets: Mapping | None, *, strict: bool = True, fps: float | None = None) -> list[DatasetSpec]:
    """The sets of a composite (``data.datasets``: name -> {format, annotations, root, fps, strict}),
    checked before any file is read; a set without its own ``strict`` or ``fps`` takes the
    composite's. A wrong entry is a one-line ValueError naming the set and the valid choices."""
    if not sets:
        raise ValueError(
            "data.datasets is not set: give each set as +data.datasets.<name>={format: casme2, annotations: FILE, root: DIR}"
        )
    specs = []
    for name, entry in sets.items():
        where = f"data.datasets.{name}"
        if not str(name) or "/" in str(name):
            raise ValueError(f"{where}: a set's name prefixes its subjects and clip ids ('{name}/...'); it cannot hold '/'")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected {{format: ..., annotations: ..., root: ...}}, got {entry!r}")
        unknown = sorted(set(entry) - set(SET_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(SET_KEYS)} "
                "(the label map is the composite's, data.label_map)"
            )
        if _unset(entry.get("format")):
            raise ValueError(f"{where}.format is not set; valid choices: {', '.join(list_formats())}")
        try:
            FORMATS.get(entry["format"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if _unset(entry.get("annotations")):
            raise ValueError(f"{where}.annotations is not set: give the set's annotation file ({where}.annotations=FILE)")
        if entry.get("root") == "???":  # a preset's mandatory folder (a null root is the annotation file's folder)
            raise ValueError(f"{where}.root is not set: give the folder of the set's clips ({where}.root=DIR)")
        specs.append(
            DatasetSpec(
                name=str(name),
                format=str(entry["format"]),
                annotations=Path(entry["annotations"]),
                root=None if _unset(entry.get("root")) else Path(entry["root"]),
                fps=fps if entry.get("fps") is None else float(entry["fps"]),
                strict=strict if entry.get("strict") is None else bool(entry["strict"]),
            )
        )
    return specs


def namespaced(record: ClipRecord, dataset: str) -> ClipRecord:
    """``record`` as a member of set ``dataset``: ``sub01`` -> ``casme2/sub01``, the same for its clip id."""
    return record.replace(subject=f"{dataset}/{record.subject}", clip_id=f"{dataset}/{record.clip_id}", dataset=dataset)


def shared_label_map(specs: Sequence[DatasetSpec]) -> str:
    """The own label map every set's format shares (smic and smic_e: megc3): a composite's map when
    ``data.label_map`` is null. Sets whose own maps differ need the composite's one map named."""
    own = {spec.name: default_label_map(spec.format) for spec in specs}
    if len(set(own.values())) != 1:
        each = ", ".join(f"{name}: {label_map}" for name, label_map in own.items())
        raise ValueError(
            f"data.label_map is null but the sets' own maps differ ({each}): give the composite's one map, e.g. megc3"
        )
    return next(iter(own.values()))


def read_composite(specs: Sequence[DatasetSpec], *, label_map: str | LabelMap | None = None) -> CompositeAnnotations:
    """Every set of ``specs`` read with the one ``label_map`` (None: :func:`shared_label_map`), namespaced by set."""
    label_map = shared_label_map(specs) if label_map is None else label_map
    out = CompositeAnnotations()
    for spec in specs:
        part = read_annotations(
            spec.annotations,
            format=spec.format,
            root=spec.root,
            label_map=label_map,
            strict=spec.strict,
            fps=spec.fps,
        )
        out.add(spec.name, Annotations((namespaced(r, spec.name) for r in part), part.skipped, part.excluded))
    return out
