"""SMIC (HS, VIS, NIR): cropped clips labelled by their folders, no annotation file.

    <path>/HS/s1/micro/negative/s1_ne_01/image*.bmp      (VIS and NIR alike, each in its own folder)

``path`` is the data set's folder holding HS, VIS and NIR (all the modalities found are read),
or one of them. Each clip folder under ``<subject>/micro/<emotion>/`` is one micro-expression
(``non_micro`` folders are not read); its folder name is the emotion (negative, positive,
surprise). SMIC gives no onset, apex or offset: a clip runs from its first to its last frame and
its apex is the midpoint (``apex_estimated``). No AUs. HS is recorded at 100 fps, VIS and NIR at 25.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, register_format
from mer.data.records import AnnotationError

MODALITY_FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}


@register_format("smic", label_map="megc3", folder=True)
def read_smic(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    for modality, folder in _modalities(path):
        for subject in _folders(folder):
            for emotion in _folders(subject / "micro"):
                for clip in _folders(emotion):
                    yield RawRow(
                        row=0,
                        where=str(clip),
                        subject=subject.name,
                        clip_id=f"{modality}/{subject.name}/{clip.name}",
                        media=clip,
                        onset=None,
                        apex=None,
                        offset=None,
                        emotion=emotion.name,
                        fps=fps or MODALITY_FPS[modality],
                        whole_clip=True,
                        extra={"modality": modality},
                    )


def _modalities(path: Path) -> list[tuple[str, Path]]:
    """(HS|VIS|NIR, folder) of each modality ``path`` is or holds."""
    if path.name.upper() in MODALITY_FPS:
        return [(path.name.upper(), path)]
    found = [(d.name.upper(), d) for d in _folders(path) if d.name.upper() in MODALITY_FPS]
    if not found:
        raise AnnotationError(f"{path}: no HS, VIS or NIR folder (smic reads the data set's folder or one of these)")
    return found


def _folders(parent: Path) -> list[Path]:
    """The sub-folders of ``parent`` in natural order (s2 before s10); none when it is missing."""
    if not parent.is_dir():
        return []
    return sorted((p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_natural)


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]
