"""Video sources return exactly the frames asked for, and fail with a one-line VideoError naming the file."""

import gc
import os

import numpy as np
import psutil
import pytest

from mer.data import video as video_module
from mer.data.video import (
    DecordSource,
    VideoError,
    count_frames,
    list_backends,
    open_video,
    write_frame_folder,
    write_video,
)
from tests.helpers import index_folder, index_frame, index_video, read_index

BACKENDS = ["decord", "pyav"]
try:  # optional backend: needs torchcodec and the system FFmpeg
    from torchcodec.decoders import VideoDecoder  # noqa: F401

    BACKENDS.append("torchcodec")
except (ImportError, RuntimeError, OSError):
    pass


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n, fps, gop, bframes",
    [(300, 200, 12, 2), (120, 200, 1, 0), (1000, 500, 250, 3), (240, 500, 30, 0)],
)
def test_exact_frames_in_the_order_asked(tmp_path, backend, n, fps, gop, bframes):
    path = index_video(tmp_path / "v.mp4", n, fps=fps, gop=gop, bframes=bframes)
    rng = np.random.default_rng(n + gop)
    asked = [int(i) for i in rng.integers(0, n, 25)] + [n - 1, 0, n - 1, n - 2, 7, 7]
    with open_video(path, backend) as source:
        assert len(source) == n and source.fps == pytest.approx(fps)
        frames = source.get_frames(asked)
    assert frames.dtype == np.uint8 and frames.shape == (len(asked), 64, 64, 3)
    assert [read_index(f) for f in frames] == asked


def test_hevc_is_read_exactly(tmp_path):
    path = write_video(tmp_path / "v.mkv", [index_frame(i) for i in range(90)], 300, codec="libx265", gop=16)
    for backend in BACKENDS:
        with open_video(path, backend) as source:
            assert [read_index(f) for f in source.get_frames([89, 0, 45])] == [89, 0, 45]


def test_frame_folder_sorts_numerically(tmp_path):
    folder = index_folder(tmp_path / "clip", [8, 9, 10, 11, 12])
    source = open_video(folder, "pyav", fps=200)  # a directory is a frame folder whatever the backend
    assert source.frame_numbers == [8, 9, 10, 11, 12] and len(source) == 5 and source.fps == 200
    assert [read_index(f) for f in source.get_frames([4, 0, 2, 2])] == [12, 8, 10, 10]


def test_a_frame_folder_with_a_gap_or_an_empty_image_is_refused_with_what_is_wrong(tmp_path):
    folder = index_folder(tmp_path / "gap", [*range(46, 60), *range(61, 70), *range(72, 80)])
    with pytest.raises(VideoError, match=r"gap: frame numbers 46-79 have gaps: 60, 70, 71 missing"):
        open_video(folder, fps=200)
    empty = index_folder(tmp_path / "empty", range(1, 6))
    (empty / "img3.jpg").write_bytes(b"")
    with pytest.raises(VideoError, match=r"img3.jpg: empty image file \(0 bytes\)"):
        open_video(empty, fps=200)


def test_backends_are_listed():
    assert {"decord", "pyav", "torchcodec"} <= set(list_backends())


def one_line(err: pytest.ExceptionInfo, path) -> str:
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text
    return text


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file(tmp_path, backend):
    with pytest.raises(VideoError) as err:
        open_video(tmp_path / "nothere.mp4", backend)
    assert one_line(err, tmp_path / "nothere.mp4").endswith("missing file")


@pytest.mark.parametrize("backend", BACKENDS)
def test_not_a_video(tmp_path, backend):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError) as err:
        open_video(path, backend)
    assert "not a video or corrupt" in one_line(err, path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_stream_is_refused_before_decoding(tmp_path, backend):
    # moov at the front, so the index promises 300 frames while half of the data is gone
    path = index_video(tmp_path / "full.mp4", 300, container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoError) as err:
        open_video(cut, backend)
    text = one_line(err, cut)
    assert "frame count reported by the container (300) disagrees with what decodes" in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_outside_the_clip(tmp_path, backend):
    path = index_video(tmp_path / "v.mp4", 20)
    with open_video(path, backend) as source, pytest.raises(VideoError) as err:
        source.get_frames([3, 20])
    assert one_line(err, path).endswith("frame index 20 is outside the clip (20 frames)")


def test_annotation_frame_count_disagreeing(tmp_path):
    path = index_video(tmp_path / "v.mp4", 20)
    with pytest.raises(VideoError, match="the annotation says 25 frames but the file decodes 20"):
        open_video(path, expected_frames=25)


def test_decord_over_reporting_is_refused_before_get_batch(tmp_path, monkeypatch):
    """decord#373: len(vr) from the nominal duration exceeds the real frames; get_batch would spin forever."""
    import decord

    path = index_video(tmp_path / "v.mp4", 30)
    calls = []

    class OverReporting(decord.VideoReader):
        def __len__(self):
            return 43

        def get_batch(self, indices):
            calls.append(indices)
            raise AssertionError("get_batch must not be reached")

    monkeypatch.setattr(decord, "VideoReader", OverReporting)
    with pytest.raises(VideoError) as err:
        DecordSource(path)
    assert "reported by the container (43) disagrees with what decodes (30)" in one_line(err, path)
    assert calls == []


def test_frame_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError) as err:
        open_video(empty)
    assert one_line(err, empty).endswith("empty folder: no numbered image files")
    folder = index_folder(tmp_path / "clip", range(1, 6))
    (folder / "img3.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    source = open_video(folder)
    assert [read_index(f) for f in source.get_frames([0, 4])] == [1, 5]
    with pytest.raises(VideoError) as err:
        source.get_frames([1, 2])
    assert one_line(err, folder / "img3.jpg").endswith("unreadable or corrupt image")


def test_an_image_is_not_a_video(tmp_path):
    folder = write_frame_folder(tmp_path / "f", [index_frame(1)])
    with pytest.raises(VideoError, match="an image, not a video"):
        open_video(folder / "img1.jpg")


def test_count_frames_for_files_and_folders(tmp_path):
    assert count_frames(index_video(tmp_path / "v.mp4", 33)) == 33
    assert count_frames(index_folder(tmp_path / "f", range(5, 12))) == 7


def test_decord_memory_stays_flat_over_many_clips(tmp_path):
    """decord#208: readers grow in memory; sources are released per clip and seek(0) after each batch."""
    path = index_video(tmp_path / "v.mp4", 400, fps=500, gop=50)
    process = psutil.Process(os.getpid())

    def read_many(k):
        for i in range(k):
            with open_video(path, "decord") as source:
                source.get_frames([i % 400, (i * 7) % 400, 399])

    read_many(20)  # warm-up: allocator pools, caches
    gc.collect()
    before = process.memory_info().rss
    read_many(150)
    gc.collect()
    grown = (process.memory_info().rss - before) / 2**20
    assert grown < 40, f"RSS grew {grown:.0f} MiB over 150 clips"


def test_probe_is_cached_per_file_version(tmp_path):
    path = index_video(tmp_path / "v.mp4", 12)
    video_module._probe_cached.cache_clear()
    count_frames(path)
    count_frames(path)
    assert video_module._probe_cached.cache_info().hits == 1
    index_video(path, 15)  # rewritten: a new size/mtime is a new cache key
    assert count_frames(path) == 15


def test_write_video_streams_a_generator_and_refuses_no_frames(tmp_path):
    made = []

    def frames():
        for i in range(12):
            made.append(i)
            yield index_frame(i)

    path = write_video(tmp_path / "gen.mp4", frames(), 30, crf=10)
    assert made == list(range(12))
    with open_video(path, "pyav") as source:
        assert [read_index(f) for f in source.get_frames(range(12))] == list(range(12))
    with pytest.raises(ValueError, match=r"empty\.mp4: no frames to write"):
        write_video(tmp_path / "empty.mp4", iter([]), 30)
    assert not (tmp_path / "empty.mp4").exists()
