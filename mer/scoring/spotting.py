"""Micro-expression spotting in long videos: where, in frames, a brief local facial movement happens.

    spotter = MotionSpotter(fps=30)
    for face in face_crops:              # uint8 (H, W[, 3]), one per frame, streamed
        spotter.push(face)
    intervals = spotter.finish()         # [Interval(onset=412, apex=415, offset=419, score=3.1), ...]

The motion signal (a feature-difference method in the manner of Moilanen et al., ICPR 2014, on
grey levels rather than LBP histograms): each crop is resized to ``crop_size`` grey, and for frame
t with k = ``window_ms`` in frames

    D_t = | I_t - (I_{t-k} + I_{t+k}) / 2 |                  (crop_size, crop_size)
    B_t = block means of D_t on a grid x grid grid            (grid, grid)
    s_t = mean of the top_blocks largest B_t - median of B_t  scalar

Linear change across the window (head drift, a lighting ramp) cancels in D; a rise and fall
shorter than 2k does not. Taking the strongest blocks keeps a movement of one face region (an AU)
from being averaged away by the still rest of the face, and subtracting the median block removes
what moves everywhere at once (head motion faster than linear, flicker). A sliding median over
``baseline_s`` is then subtracted from s, and the peaks of what remains above ``threshold`` robust
standard deviations are the apexes; each interval runs from its apex outwards while the signal
stays above ``edge_fraction`` of the peak. s_t is known once frame t+k has arrived; ``finish``
handles the last k frames (and the first k, which have no frame t-k): their signal is 0.

When the crop itself moves (the face tracker shifts its box), every frame whose window
[t-k, t+k] straddles the shift sees the whole crop displaced: ``push(face, moved=True)`` marks the
shift, and those 2k frames of signal are bridged by interpolation between their neighbours
instead (a movement that coincides with a box shift is lost; the tracker shifts rarely).

Only a ring buffer of the last 2k+1 crops is kept, plus the 1-D signal (one float per frame).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

# the MEGC evaluation of spotted intervals lives in spotting_eval; these stay importable from here
from mer.scoring.spotting_eval import evaluate_spotting, interval_iou, spotting_scores  # noqa: F401

MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class Interval:
    """A spotted (or true) movement: frame positions in the video, 0-based, inclusive bounds.

    ``score`` is the peak of the baseline-removed signal over the threshold level (>= 1 for a
    spotted interval; larger = more salient).
    """

    onset: int
    apex: int
    offset: int
    score: float = 0.0

    def __post_init__(self) -> None:
        if not self.onset <= self.apex <= self.offset:
            raise ValueError(f"an interval needs onset <= apex <= offset, got {self.onset}, {self.apex}, {self.offset}")

    @property
    def n_frames(self) -> int:
        return self.offset - self.onset + 1


@dataclass
class SpottingConfig:
    """The spotter's settings; times in ms or s are turned into frames at the video's fps.

    Defaults tuned on long synthetic videos (tools/eval_spotting.py, seeds 0-9), reported on
    others (seeds 1000+): see docs/scoring.md.
    """

    # The motion signal.
    window_ms: float = 50.0  # k: frame t is compared with frames t-k and t+k (>= 1 frame)
    grid: int = 8  # the face crop is cut into grid x grid blocks; motion is measured per block
    top_blocks: int = 2  # the signal is the mean of the strongest blocks (a local movement, like an AU)
    subtract_median_block: bool = True  # minus the median block: remove what moves the whole face
    normalise_gain: bool = True  # divide each crop by its mean grey: a lighting change is not motion
    mask_eyes: bool = True  # drop the blocks of the eye band: blinks are the commonest false alarm
    eye_band: tuple[float, float] = (0.35, 0.5)  # rows of the crop (fractions of its height) holding the eyes
    # Peaks.
    baseline_s: float = 2.0  # a sliding median over this span is subtracted (0: none)
    threshold: float = 8.0  # apex where the signal exceeds the median by this many robust std (1.4826 MAD)
    min_distance_ms: float = 200.0  # of two peaks closer than this only the higher is kept
    # Intervals.
    edge_fraction: float = 0.15  # the movement spans the frames above this fraction of the peak
    max_duration_ms: float = 500.0  # longer intervals are cut down around the apex (MEs last <= 500 ms)
    min_duration_ms: float = 40.0  # shorter intervals are widened around the apex

    def __post_init__(self) -> None:
        if self.grid < 1 or not 1 <= self.top_blocks <= self.grid**2:
            raise ValueError(f"need grid >= 1 and 1 <= top_blocks <= grid^2, got grid={self.grid}, top_blocks={self.top_blocks}")
        if self.window_ms <= 0 or self.baseline_s < 0 or self.threshold <= 0 or not 0 <= self.edge_fraction < 1:
            raise ValueError("need window_ms > 0, baseline_s >= 0, threshold > 0 and 0 <= edge_fraction < 1")
        if not 0 < self.min_duration_ms <= self.max_duration_ms:
            raise ValueError(f"need 0 < min_duration_ms <= max_duration_ms, got {self.min_duration_ms}, {self.max_duration_ms}")

    def frames(self, ms: float, fps: float) -> int:
        """A span in ms as a whole number of frames at ``fps``, at least 1."""
        return max(1, int(round(ms * fps / 1000.0)))


class MotionSpotter:
    """Streaming: push one face crop per frame, then ``finish()`` -> intervals.

    Memory: the last 2k+1 crops (``crop_size``² floats each) and one float per frame.
    """

    def __init__(self, fps: float, config: SpottingConfig | None = None, crop_size: int = 64) -> None:
        if fps <= 0 or crop_size < 8:
            raise ValueError(f"need fps > 0 and crop_size >= 8, got {fps}, {crop_size}")
        self.fps = float(fps)
        self.config = config if config is not None else SpottingConfig()
        self.crop_size = crop_size
        self.k = self.config.frames(self.config.window_ms, self.fps)
        self._crops: deque[np.ndarray] = deque(maxlen=2 * self.k + 1)  # (crop_size, crop_size) float32 each
        self._signal: list[float] = []
        self._n_pushed = 0
        self._masked: list[tuple[int, int]] = []  # [first, last] frames whose window straddles a crop shift
        self._finished: list[Interval] | None = None
        self._block_weights = self._blocks_kept()
        self._top = min(self.config.top_blocks, int(self._block_weights.sum()))  # all blocks kept: the whole-face mean

    def _blocks_kept(self) -> np.ndarray:
        """(grid, grid) bool: the blocks that count (all but the eye band's when masking)."""
        g = self.config.grid
        keep = np.ones((g, g), bool)
        if self.config.mask_eyes:
            lo, hi = self.config.eye_band
            centres = (np.arange(g) + 0.5) / g
            keep[(centres >= lo) & (centres <= hi), :] = False
        if not keep.any():
            raise ValueError(f"the eye band {self.config.eye_band} masks every block of a {g} x {g} grid")
        return keep

    def push(self, face: np.ndarray, moved: bool = False) -> None:
        """Add the face crop of the next frame: uint8 RGB (H, W, 3) or grey (H, W), any size.

        ``moved``: this crop was cut with another box than the previous one; the frames whose
        window spans the shift are bridged, not measured (see the module docstring).
        """
        if self._finished is not None:
            raise RuntimeError("this spotter has finished; make a new one for another video")
        if moved and self._n_pushed > 0:
            c = self._n_pushed  # the shift lies between frames c-1 and c: windows of t in [c-k, c+k-1]
            self._masked.append((max(0, c - self.k), c + self.k - 1))
        face = np.asarray(face)
        if face.ndim == 3:
            face = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY) if face.shape[2] == 3 else face[..., 0]
        elif face.ndim != 2:
            raise ValueError(f"a face crop is (H, W) or (H, W, 3), got shape {face.shape}")
        crop = cv2.resize(face, (self.crop_size, self.crop_size), interpolation=cv2.INTER_AREA).astype(np.float32)
        if self.config.normalise_gain:
            crop *= np.float32(128.0) / max(float(crop.mean()), 1.0)  # mean grey 128: flicker and exposure cancel
        self._crops.append(crop)
        self._n_pushed += 1
        if self._n_pushed <= self.k:
            self._signal.append(0.0)  # frames 0..k-1 have no frame t-k
        elif len(self._crops) == self._crops.maxlen:
            self._signal.append(self._motion(self._crops[0], self._crops[self.k], self._crops[-1]))
        # The signal now covers frames 0 .. n_pushed - k - 1 (frame t waits for t+k).

    def _motion(self, before: np.ndarray, now: np.ndarray, after: np.ndarray) -> float:
        """s_t of the module docstring from the crops at t-k, t, t+k."""
        diff = np.abs(now - 0.5 * (before + after))  # (S, S)
        g = self.config.grid
        blocks = cv2.resize(diff, (g, g), interpolation=cv2.INTER_AREA)[self._block_weights]  # (n_kept,)
        top = np.partition(blocks, blocks.size - self._top)[-self._top :]
        value = float(top.mean())
        if self.config.subtract_median_block:
            value -= float(np.median(blocks))
        return value

    @property
    def signal(self) -> np.ndarray:
        """The motion signal (n_frames_known,) float64: frames whose t+k has arrived (all after finish)."""
        return np.asarray(self._signal, dtype=np.float64)

    @property
    def n_buffered(self) -> int:
        """Crops held in the ring buffer (at most 2k+1)."""
        return len(self._crops)

    def finish(self) -> list[Interval]:
        """Close the video (the last k frames get signal 0) and return the intervals, sorted by onset."""
        if self._finished is None:
            self._signal.extend([0.0] * (self._n_pushed - len(self._signal)))
            self._crops.clear()
            self._bridge_masked()
            self._finished = find_intervals(self.signal, self.fps, self.config)
        return list(self._finished)

    def _bridge_masked(self) -> None:
        """Replace the signal of masked frames by a straight line between the unmasked frames around them."""
        if not self._masked:
            return
        n = len(self._signal)
        masked = np.zeros(n, bool)
        for first, last in self._masked:
            masked[first : last + 1] = True
        if masked.all():
            self._signal = [0.0] * n
            return
        values = np.asarray(self._signal, dtype=np.float64)
        frames = np.arange(n)
        values[masked] = np.interp(frames[masked], frames[~masked], values[~masked])
        self._signal = values.tolist()

    @property
    def masked_frames(self) -> int:
        """How many frames' signal was bridged because the crop moved (known after ``finish``)."""
        n = self._n_pushed
        masked = np.zeros(n, bool)
        for first, last in self._masked:
            masked[first : min(last, n - 1) + 1] = True
        return int(masked.sum())


def spot(
    frames: Iterable[np.ndarray], fps: float, config: SpottingConfig | None = None, *, crop_size: int = 64
) -> list[Interval]:
    """Spot the intervals in a sequence of face crops (any iterable; frames are not kept)."""
    spotter = MotionSpotter(fps, config, crop_size)
    for face in frames:
        spotter.push(face)
    return spotter.finish()


# ---- from the 1-D signal to intervals --------------------------------------------------------


def remove_baseline(signal: np.ndarray, fps: float, config: SpottingConfig | None = None) -> np.ndarray:
    """The signal minus its sliding median over ``baseline_s`` (n_frames,); unchanged when 0."""
    from scipy.ndimage import median_filter

    config = config if config is not None else SpottingConfig()
    signal = np.asarray(signal, dtype=np.float64)
    if config.baseline_s <= 0 or signal.size == 0:
        return signal.copy()
    span = config.frames(1000.0 * config.baseline_s, fps) | 1  # odd: centred on the frame
    return signal - median_filter(signal, size=span, mode="nearest")


def threshold_level(contrast: np.ndarray, config: SpottingConfig | None = None) -> float:
    """The apex threshold on the baseline-removed signal: median + threshold x 1.4826 MAD.

    Robust: the few frames that hold expressions barely move the median and MAD, so the level
    follows the noise of this video, not its largest event (unlike mean + p (max - mean), which
    always finds "events" in a video that has none).
    """
    config = config if config is not None else SpottingConfig()
    contrast = np.asarray(contrast, dtype=np.float64)
    if contrast.size == 0:
        return float("inf")
    centre = float(np.median(contrast))
    spread = MAD_TO_STD * float(np.median(np.abs(contrast - centre)))
    return centre + config.threshold * max(spread, 1e-6)


def find_intervals(signal: np.ndarray, fps: float, config: SpottingConfig | None = None) -> list[Interval]:
    """Intervals from a motion signal (n_frames,): baseline removal, threshold, peaks, extents."""
    from scipy.signal import find_peaks

    config = config if config is not None else SpottingConfig()
    contrast = remove_baseline(signal, fps, config)
    if contrast.size < 3:
        return []
    level = threshold_level(contrast, config)
    apexes, _ = find_peaks(contrast, height=level, distance=config.frames(config.min_distance_ms, fps))
    longest = config.frames(config.max_duration_ms, fps)
    shortest = min(config.frames(config.min_duration_ms, fps), longest)
    intervals = []
    for i, apex in enumerate(apexes):
        # Bounds: never past the lowest point between this apex and its neighbours.
        lo = 0 if i == 0 else apexes[i - 1] + int(np.argmin(contrast[apexes[i - 1] : apex + 1]))
        hi = contrast.size - 1 if i == len(apexes) - 1 else apex + int(np.argmin(contrast[apex : apexes[i + 1] + 1]))
        floor = config.edge_fraction * contrast[apex]
        onset = apex
        while onset > lo and contrast[onset - 1] > floor:
            onset -= 1
        offset = apex
        while offset < hi and contrast[offset + 1] > floor:
            offset += 1
        # Onset and offset are the still frames just before and after the movement (as annotated).
        onset, offset = max(0, onset - 1), min(contrast.size - 1, offset + 1)
        onset, offset = _fit_length(onset, apex, offset, shortest, longest, contrast.size)
        intervals.append(
            Interval(int(onset), int(apex), int(offset), float(contrast[apex] / level) if level > 0 else float("inf"))
        )
    return intervals


def _fit_length(onset: int, apex: int, offset: int, shortest: int, longest: int, n: int) -> tuple[int, int]:
    """Cut [onset, offset] down to ``longest`` frames or widen it to ``shortest``, keeping the apex
    inside and the part nearer the apex (the same number of frames each side where possible)."""
    length = offset - onset + 1
    if length > longest:
        left = min(apex - onset, max((longest - 1) // 2, longest - 1 - (offset - apex)))
        onset, offset = apex - left, apex - left + longest - 1
    elif length < shortest:
        grow = shortest - length
        onset = max(0, onset - grow // 2)
        offset = min(n - 1, onset + shortest - 1)
        onset = max(0, offset - shortest + 1)
    return onset, offset
