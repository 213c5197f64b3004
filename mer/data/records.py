"""ClipRecord: one annotated micro-expression clip, whatever data set it came from.

Frame positions (``onset``, ``apex``, ``offset``, ``start``, ``stop``) are 0-based indices into the
clip's :class:`~mer.data.video.VideoSource`: the i-th decoded frame of a video file, or the i-th
image by number of a frame folder. Readers convert the frame numbers a data set writes (CASME II's
``img46.jpg`` is frame number 46) into these positions, so samplers and datasets never see a
data set's numbering; ``first_frame`` keeps the number of position 0 for reporting back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mer.data.aus import ActionUnit, au_numbers, format_aus


@dataclass(frozen=True)
class ClipRecord:
    subject: str
    clip_id: str
    path: str  # video file or frame folder
    onset: int
    apex: int
    offset: int
    emotion: str  # normalised emotion, e.g. "happiness"
    label: int  # class index in the label map the record was read with
    aus: tuple[ActionUnit, ...] = ()
    fps: float = 200.0
    n_frames: int = 0  # frames in the source at ``path``
    source: str = "csv"  # annotation format it was read from
    apex_estimated: bool = False  # apex was missing and set to the onset-offset midpoint
    start: int = 0  # the clip's span in the source: [start, stop); a long recording may hold many clips
    stop: int = 0  # 0 means n_frames
    first_frame: int = 0  # the data set's frame number at position 0
    dataset: str = ""  # the set of a composite it was read in (its name, e.g. "casme2"); "" outside one
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def au_numbers(self) -> frozenset[int]:
        return au_numbers(self.aus)

    @property
    def au_string(self) -> str:
        return format_aus(self.aus)

    @property
    def span(self) -> tuple[int, int]:
        """[start, stop) of the clip in its source."""
        return self.start, (self.stop or self.n_frames)

    @property
    def duration_s(self) -> float:
        return (self.offset - self.onset + 1) / self.fps

    def replace(self, **changes) -> ClipRecord:
        return replace(self, **changes)


class AnnotationError(ValueError):
    """An annotation row that cannot become a ClipRecord; the message names file and row."""


def check_event(onset: int, apex: int | None, offset: int, n_frames: int | None) -> tuple[int, bool]:
    """Validate onset <= apex <= offset inside [0, n_frames); return (apex, apex_estimated).

    A missing apex falls back to the onset-offset midpoint. Raises ValueError with the reason.
    """
    if onset < 0:
        raise ValueError(f"onset {onset} is before the first frame")
    if offset < onset:
        raise ValueError(f"offset {offset} is before onset {onset}")
    if n_frames is not None and offset >= n_frames:
        raise ValueError(f"offset {offset} is outside the clip ({n_frames} frames)")
    if apex is None:
        return (onset + offset) // 2, True
    if not onset <= apex <= offset:
        raise ValueError(f"apex {apex} is outside onset..offset {onset}..{offset}")
    return apex, False
