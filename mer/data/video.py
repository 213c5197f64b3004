"""Video sources: exact frames by index from video files (Decord, PyAV, torchcodec) and frame folders.

Every backend answers the same three questions — how many frames (``len``), at what rate
(``fps``), and which pixels at these indices (``get_frames``) — and fails the same way, with a
:class:`VideoError` naming the file and the reason.

Decord is the default reader, with two known defects guarded here:

* it trusts the container's nominal frame count, and ``get_batch`` spins forever (holding the
  GIL) on an index past the last decodable frame (dmlc/decord#373). Before the first read we
  count the packets of the video stream with PyAV (a demux, no decoding, milliseconds) and refuse
  a file whose reported count disagrees with it, so no index past the real end ever reaches
  Decord;
* its readers grow in memory across reads (dmlc/decord#208, #197). After each batch we
  ``seek(0)`` (the fix reported in those threads) and sources are closed after every clip.

    source = open_video("sub01/clip.mp4")          # or a frame folder
    frames = source.get_frames([12, 40, 40, 3])    # uint8 (4, H, W, 3), in the order asked
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mer.registry import Registry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class VideoError(RuntimeError):
    """A video or frame folder that cannot give the frames asked for; ``str()`` is one line."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever the library said
        super().__init__(f"{self.path}: {self.reason}")


@runtime_checkable
class VideoSource(Protocol):
    path: Path

    def __len__(self) -> int: ...

    @property
    def fps(self) -> float: ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray: ...

    def close(self) -> None: ...


class _Source:
    """Shared behaviour: index checks, decode each distinct index once, answer in the order asked."""

    path: Path
    _count: int
    _fps: float

    def __len__(self) -> int:
        return self._count

    @property
    def fps(self) -> float:
        return self._fps

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 array (T, H, W, 3) RGB for ``indices`` in the order given (repeats allowed)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise VideoError(self.path, "no frame indices asked for")
        bad = idx[(idx < 0) | (idx >= self._count)]
        if bad.size:
            raise VideoError(self.path, f"frame index {int(bad[0])} is outside the clip ({self._count} frames)")
        unique, inverse = np.unique(idx, return_inverse=True)
        frames = self._decode(unique.tolist())  # (U, H, W, 3) for sorted distinct indices
        if frames.shape[0] != unique.size:
            raise VideoError(self.path, f"decoded {frames.shape[0]} of {unique.size} frames asked for")
        return frames[inverse]

    def _decode(self, sorted_indices: list[int]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, frames={self._count}, fps={self._fps:g})"


def _reason(exc: BaseException) -> str:
    """The library's reason without the file name it repeats (FFmpeg errors carry strerror)."""
    return getattr(exc, "strerror", None) or str(exc)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "missing file")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")


@lru_cache(maxsize=4096)
def _probe_cached(path: str, size: int, mtime_ns: int) -> tuple[int, float, int]:
    """(decodable frame count, fps, container-reported count) from a PyAV demux (no decoding)."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(path, "not a video: the file has no video stream")
            stream = container.streams.video[0]
            reported = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            count = 0
            for packet in container.demux(stream):
                if packet.size:  # the final flush packet is empty
                    count += 1
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(path, f"not a video or corrupt: {_reason(exc)}") from None
    if count == 0:
        raise VideoError(path, "no frames: the video stream is empty or truncated")
    return count, fps, reported


def probe_video(path: str | os.PathLike) -> tuple[int, float, int]:
    """Return ``(frames, fps, reported_frames)`` of a video file; cached per file version."""
    path = Path(path)
    _check_file(path)
    stat = path.stat()
    return _probe_cached(str(path), stat.st_size, stat.st_mtime_ns)


def count_frames(path: str | os.PathLike) -> int:
    """Frames in a video file (counted from its packets) or a frame folder (its image files)."""
    path = Path(path)
    if path.is_dir():
        return len(list_frame_files(path))
    return probe_video(path)[0]


def _check_count(path: Path, count: int, reported: int, expected: int | None) -> None:
    # A container whose index promises more frames than its packets hold is truncated or wrong;
    # Decord would hang reaching for the missing ones (decord#373).
    if reported and reported != count:
        raise VideoError(
            path,
            f"frame count reported by the container ({reported}) disagrees with what decodes ({count}): "
            "truncated or corrupt stream",
        )
    if expected is not None and int(expected) != count:
        raise VideoError(path, f"the annotation says {int(expected)} frames but the file decodes {count}")


_DECORD_PREFIX = re.compile(r"^\[[\d:]+\]\s+\S+:\d+:\s*")


def _decord_reason(exc: BaseException) -> str:
    """Decord's message without its ``[time] file.cc:line:`` prefix."""
    return _DECORD_PREFIX.sub("", str(exc).strip().splitlines()[0])


BACKENDS: Registry = Registry("video backend")


@BACKENDS.register("decord")
class DecordSource(_Source):
    def __init__(self, path: str | os.PathLike, expected_frames: int | None = None, num_threads: int = 1) -> None:
        import decord

        self.path = Path(path)
        count, fps, reported = probe_video(self.path)
        _check_count(self.path, count, reported, expected_frames)
        try:
            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
        except decord.DECORDError as exc:
            raise VideoError(self.path, f"decord cannot open it: {_decord_reason(exc)}") from None
        # Decord's count may come from the container's nominal duration; it must match the packets,
        # or get_batch can spin forever past the real end (decord#373).
        nominal = len(self._reader)
        if nominal != count:
            self._reader = None
            raise VideoError(
                self.path, f"frame count reported by the container ({nominal}) disagrees with what decodes ({count})"
            )
        self._count = count
        self._fps = float(self._reader.get_avg_fps()) or fps

    def _decode(self, sorted_indices: list[int]) -> np.ndarray:
        import decord

        try:
            frames = self._reader.get_batch(sorted_indices).asnumpy()
            self._reader.seek(0)  # releases decoded frames Decord keeps (decord#208)
        except decord.DECORDError as exc:
            raise VideoError(self.path, f"decord failed to decode: {_decord_reason(exc)}") from None
        return frames

    def close(self) -> None:
        self._reader = None


@BACKENDS.register("pyav")
class PyAVSource(_Source):
    """Exact frames with PyAV: seek to the keyframe before a target, decode forward to it."""

    def __init__(self, path: str | os.PathLike, expected_frames: int | None = None) -> None:
        import av

        self.path = Path(path)
        count, fps, reported = probe_video(self.path)
        _check_count(self.path, count, reported, expected_frames)
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise VideoError(self.path, f"not a video or corrupt: {_reason(exc)}") from None
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        # Presentation order of frames: packet pts sorted (B-frames are stored out of order).
        pts, keys = [], []
        for packet in self._container.demux(self._stream):
            if packet.size and packet.pts is not None:
                pts.append(packet.pts)
                keys.append(packet.is_keyframe)
        order = np.argsort(pts, kind="stable")
        self._pts = np.asarray(pts, dtype=np.int64)[order]
        keyframe_pts = {p for p, k in zip(pts, keys) if k}
        self._keyframes = np.flatnonzero([p in keyframe_pts for p in self._pts])
        if len(self._pts) != count:
            raise VideoError(self.path, f"{count - len(self._pts)} frames have no timestamp")
        self._count = count
        self._fps = fps

    def _decode(self, sorted_indices: list[int]) -> np.ndarray:
        import av

        out: dict[int, np.ndarray] = {}
        pts_to_index = {int(p): i for i, p in enumerate(self._pts)}
        wanted = set(sorted_indices)
        position, frames = None, None  # last presentation index decoded; the decoding iterator
        try:
            for target in sorted_indices:
                if target in out:
                    continue
                k = int(np.searchsorted(self._keyframes, target, side="right")) - 1
                key = int(self._keyframes[k]) if k >= 0 else 0
                if frames is None or position is None or position >= target or key > position:
                    self._container.seek(int(self._pts[key]), stream=self._stream, backward=True, any_frame=False)
                    frames, position = self._container.decode(self._stream), None
                for frame in frames:  # resumed, not restarted, for the next target
                    index = pts_to_index.get(frame.pts)
                    if index is None:
                        continue
                    position = index
                    if index in wanted and index not in out:
                        out[index] = frame.to_ndarray(format="rgb24")
                    if index >= target:
                        break
        except av.error.FFmpegError as exc:
            raise VideoError(self.path, f"PyAV failed to decode: {_reason(exc)}") from None
        missing = [i for i in sorted_indices if i not in out]
        if missing:
            raise VideoError(self.path, f"frame {missing[0]} could not be decoded: truncated or corrupt stream")
        return np.stack([out[i] for i in sorted_indices])

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


@BACKENDS.register("torchcodec")
class TorchCodecSource(_Source):
    """torchcodec's exact-seek decoder (optional: ``pip install mer[torchcodec]`` and apt ``ffmpeg``)."""

    def __init__(self, path: str | os.PathLike, expected_frames: int | None = None) -> None:
        self.path = Path(path)
        count, fps, reported = probe_video(self.path)
        _check_count(self.path, count, reported, expected_frames)
        try:
            from torchcodec.decoders import VideoDecoder
        except (ImportError, RuntimeError, OSError) as exc:
            raise VideoError(
                self.path, f"the torchcodec backend is unavailable ({exc}); pip install 'mer[torchcodec]' and apt install ffmpeg"
            ) from None
        try:
            self._decoder = VideoDecoder(str(self.path), seek_mode="exact", dimension_order="NHWC")
        except (RuntimeError, ValueError) as exc:
            raise VideoError(self.path, f"torchcodec cannot open it: {exc}") from None
        self._count = count
        self._fps = float(self._decoder.metadata.average_fps or fps)

    def _decode(self, sorted_indices: list[int]) -> np.ndarray:
        try:
            return self._decoder.get_frames_at(indices=sorted_indices).data.numpy()
        except (RuntimeError, IndexError) as exc:
            raise VideoError(self.path, f"torchcodec failed to decode: {exc}") from None

    def close(self) -> None:
        self._decoder = None


_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_number(name: str) -> int:
    """The frame number in a file name: the last run of digits (``img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562)."""
    match = _NUMBER.search(Path(name).stem)
    if match is None:
        raise ValueError(f"{name}: no frame number in the file name")
    return int(match.group(1))


@lru_cache(maxsize=4096)
def _list_frames_cached(folder: str, mtime_ns: int) -> tuple[tuple[int, str], ...]:
    entries, empty = [], []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.lower().endswith(IMAGE_SUFFIXES) and not entry.name.startswith("."):
                try:
                    entries.append((frame_number(entry.name), entry.name))
                except ValueError:
                    continue
                if entry.stat().st_size == 0:
                    empty.append(entry.name)
    if empty:
        raise VideoError(
            Path(folder) / sorted(empty)[0], f"empty image file (0 bytes){f'; {len(empty)} in all' if len(empty) > 1 else ''}"
        )
    entries.sort()
    numbers = [n for n, _ in entries]
    if numbers and numbers[-1] - numbers[0] + 1 != len(numbers):
        # a missing frame would shift every later one in time: the clip is refused, not read wrong
        present = set(numbers)
        missing = [n for n in range(numbers[0], numbers[-1] + 1) if n not in present]
        shown = ", ".join(map(str, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise VideoError(Path(folder), f"frame numbers {numbers[0]}-{numbers[-1]} have gaps: {shown} missing")
    return tuple(entries)


def list_frame_files(folder: str | os.PathLike) -> tuple[tuple[int, str], ...]:
    """Sorted ``(frame number, file name)`` pairs of a frame folder (numeric order: img2 < img10).

    A folder whose numbers have a gap, or with an empty image file, is a VideoError naming them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(folder, "missing frame folder")
    entries = _list_frames_cached(str(folder), folder.stat().st_mtime_ns)
    if not entries:
        raise VideoError(folder, "empty folder: no numbered image files")
    return entries


class FrameFolderSource(_Source):
    """A folder of numbered images, as CASME II, SAMM and CAS(ME)^3 ship; index i = i-th by number."""

    def __init__(self, path: str | os.PathLike, expected_frames: int | None = None, fps: float = 30.0) -> None:
        self.path = Path(path)
        self._files = list_frame_files(self.path)
        self.frame_numbers = [n for n, _ in self._files]
        self._count = len(self._files)
        if expected_frames is not None and int(expected_frames) != self._count:
            raise VideoError(self.path, f"the annotation says {int(expected_frames)} frames but the folder holds {self._count}")
        self._fps = float(fps)

    def _decode(self, sorted_indices: list[int]) -> np.ndarray:
        import cv2

        frames = []
        for i in sorted_indices:
            file = self.path / self._files[i][1]
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(file, "unreadable or corrupt image")
            if frames and image.shape != frames[0].shape:
                raise VideoError(file, f"image size {image.shape[1]}x{image.shape[0]} differs from the folder's first frame")
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return np.stack(frames)


def list_backends() -> list[str]:
    return BACKENDS.names()


def open_video(
    path: str | os.PathLike,
    backend: str = "decord",
    *,
    expected_frames: int | None = None,
    fps: float | None = None,
) -> VideoSource:
    """Open a video file with ``backend`` or, for a directory, a frame folder.

    ``expected_frames`` (from the annotation) is checked against what the file decodes; ``fps``
    is the frame rate of a frame folder (video files carry their own).
    """
    path = Path(path)
    if path.is_dir():
        return FrameFolderSource(path, expected_frames=expected_frames, fps=fps or 30.0)
    _check_file(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise VideoError(path, "an image, not a video (pass its folder to read a frame folder)")
    return BACKENDS.get(backend)(path, expected_frames=expected_frames)


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    crf: int = 18,
    gop: int | None = None,
    bframes: int | None = None,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB uint8 frames (T, H, W, 3) to a video file with PyAV (H.264 by default).

    ``frames`` may be any iterable (a generator streams: frames are encoded as they come).
    libx264 runs with its macroblock-tree rate control off (``x264-params=mbtree=0``, unless
    ``options`` sets ``x264-params``): with it on, the same frames encoded twice, even in one
    process with ``threads=1``, decode to different pixels (up to ~50 grey levels apart; its
    SIMD code, not the threads: ``asm=0`` is reproducible too), so a seeded synthetic set was not
    reproducible (tools/check_determinism.py). Off, an encode is bit-reproducible, about 0.6 dB
    closer to the frames at the same CRF and ~30% larger.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    height, width = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001) if not float(fps).is_integer() else int(fps)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        opts = {"crf": str(crf)} if codec in ("libx264", "libx265") else {}
        if gop is not None:
            opts["g"] = str(gop)
        if bframes is not None:
            opts["bf"] = str(bframes)
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        if codec == "libx264":
            opts["x264-params"] = "mbtree=0"  # reproducible encodes (docstring)
        opts.update(options or {})
        stream.options = opts
        for image in itertools.chain([first], frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frame_folder(
    folder: str | os.PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    *,
    pattern: str = "img{}.jpg",
    start: int = 1,
    quality: int = 95,
) -> Path:
    """Write RGB frames as numbered images (``img1.jpg``, ``img2.jpg``, ... by default)."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if pattern.lower().endswith((".jpg", ".jpeg")) else []
    for i, image in enumerate(frames):
        path = folder / pattern.format(start + i)
        if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR), params):
            raise OSError(f"{path}: the image could not be written")  # cv2 says so by its return value only
    return folder
