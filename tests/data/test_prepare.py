"""mer-prepare on a small raw set: synthetic faces turned and scaled in larger frames (DFME's layout:
frame folders numbered from 1), a clip without a face, a clip with a corrupt frame, a row without a clip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mer.cli import compose
from mer.data.build import build_clip_dataset, load_records
from mer.data.prepare import prepare_clips
from mer.data.video import write_frame_folder
from tests.helpers import face_in_frame, turned

pytestmark = pytest.mark.filterwarnings("ignore:.*(missing video or frame folder|skipped 1 invalid rows):UserWarning")

FRAMES = 8
SIZE = 64
FACES = {"c1": (1, 12.0, 1.0), "c2": (2, -15.0, 1.2), "c3": (5, 22.0, 0.9)}  # clip: (seed, angle, scale)


@pytest.fixture(scope="module")
def raw_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    rows = ["subject,clip,onset,apex,offset,emotion,aus,fps"]
    for i, (clip, (seed, angle, scale)) in enumerate(FACES.items()):
        frames, _ = turned(*face_in_frame(seed, FRAMES), angle, scale)
        write_frame_folder(root / f"s{i}" / clip, frames, pattern="img{}.jpg", start=1)
        rows.append(f"s{i},{clip},2,{'' if clip == 'c3' else 4},7,{'happy' if i else 'others'},6+L12,200")
    write_frame_folder(root / "s9" / "blank", np.full((FRAMES, 256, 320, 3), 120, np.uint8), start=1)
    write_frame_folder(root / "s9" / "broken", frames, start=1)  # a face, and one frame (not looked at for it) corrupt
    (root / "s9" / "broken" / "img5.jpg").write_bytes(b"not a jpeg")
    rows += ["s9,blank,1,3,5,surprise,1+2,200", "s9,broken,1,3,5,surprise,1+2,200", "s9,gone,1,3,5,surprise,1+2,200"]
    (root / "annotations.csv").write_text("\n".join(rows) + "\n")
    return root / "annotations.csv"


def raw_records(annotations: Path, label_map=None):
    return load_records(
        compose("prepare", ["data=dfme", f"data.annotations={annotations}", "data.strict=false"]).data, label_map=label_map
    )


@pytest.fixture(scope="module")
def prepared(raw_set, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The command as a user runs it, on the whole raw set."""
    output = tmp_path_factory.mktemp("prepared")
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "MER_DEBUG")}
    done = subprocess.run(
        [sys.executable, "-m", "mer.prepare", "data=dfme", f"data.annotations={raw_set}", f"output={output}", f"size={SIZE}"]
        + ["progress=false", f"hydra.run.dir={output / 'hydra'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return output, done


def test_every_clip_with_a_face_is_aligned_and_the_rest_listed(prepared, raw_set):
    output, done = prepared
    assert done.returncode == 1 and "Traceback" not in done.stderr  # some clips failed: exit code 1, as mer-score
    lines = done.stderr.strip().splitlines()
    assert "prepared 3, skipped 0 (done before), no face 1 (no_face.csv), failed 2 (failed.txt)" in lines[-2]
    assert lines[-1].startswith("mer-prepare: 2 clip(s) failed;")
    failed = (output / "failed.txt").read_text().splitlines()
    assert len(failed) == 2
    assert any(str(raw_set.parent / "s9" / "broken" / "img5.jpg") in line and "corrupt image" in line for line in failed)
    assert any("row 7" in line and "s9/gone" in line for line in failed)  # the row whose clip is missing
    assert pd.read_csv(output / "no_face.csv").to_dict("records") == [
        {"subject": "s9", "clip": "blank", "path": str(raw_set.parent / "s9" / "blank")}
    ]
    table = pd.read_csv(output / "annotations.csv", dtype=str, keep_default_na=False)
    assert table["clip"].tolist() == ["c1", "c2", "c3"] and set(table.alignment) == {"eyes"}
    for row in table.itertuples():
        files = sorted((output / row.path).glob("*.png"))
        assert len(files) == FRAMES and cv2.imread(str(files[0])).shape == (SIZE, SIZE, 3)
        assert float(row.angle) == pytest.approx(FACES[row.clip][1], abs=4)  # the turn the clip was given, undone
        alignment = json.loads((output / row.path / "alignment.json").read_text())
        assert alignment["alignment"]["by"] == "eyes" and alignment["settings"]["size"] == SIZE


def test_training_reads_the_prepared_clips_with_the_same_labels_and_events(prepared, raw_set):
    output, _ = prepared
    cfg = compose("train", ["data=csv", f"data.annotations={output / 'annotations.csv'}", "data.motion.cache=false"])
    after = {r.clip_id: r for r in load_records(cfg.data)}
    before = {r.clip_id: r for r in raw_records(raw_set) if r.clip_id in after}
    assert sorted(after) == ["c2", "c3"]  # dfme7 leaves "others" (c1) out, of the raw set and of the prepared one alike
    fields = ("subject", "label", "emotion", "onset", "apex", "offset", "apex_estimated", "aus", "fps", "n_frames")
    for clip, record in after.items():
        assert {f: getattr(record, f) for f in fields} == {f: getattr(before[clip], f) for f in fields}
    assert after["c3"].apex_estimated and (after["c2"].onset, after["c2"].apex, after["c2"].offset) == (1, 3, 6)
    every = load_records(cfg.data, label_map="all")
    assert [r.clip_id for r in every] == ["c1", "c2", "c3"]  # the prepared set keeps every emotion
    item = build_clip_dataset(list(after.values()), cfg.data, cfg.clip_sampler, train=False)[0]
    assert item["clip_id"] == "c2" and np.isfinite(item["clip"].numpy()).all()  # frames read, flow computed


def test_a_second_run_skips_finished_clips_and_redoes_a_half_written_one(raw_set, tmp_path):
    records = [r for r in raw_records(raw_set, "all") if r.clip_id in ("c1", "c2")]
    options = {"size": SIZE, "detect_frames": 1, "progress": False}
    first = prepare_clips(records, tmp_path, **options)
    assert first.prepared == ["c1", "c2"] and not first.failed
    done = tmp_path / "s0" / "c1"
    stamp = (done / "000000.png").stat().st_mtime_ns
    # c2 as a kill mid-clip leaves it: a partial folder with some of its frames and no alignment.json
    half = tmp_path / "s1" / ".c2.partial"
    (tmp_path / "s1" / "c2").rename(half)
    (half / "alignment.json").unlink()
    for extra in sorted(half.glob("*.png"))[3:]:
        extra.unlink()
    second = prepare_clips(records, tmp_path, **options)
    assert second.skipped == ["c1"] and second.prepared == ["c2"]
    assert not half.exists() and len(list((tmp_path / "s1" / "c2").glob("*.png"))) == FRAMES
    assert (done / "000000.png").stat().st_mtime_ns == stamp  # the finished clip was not written again
    assert pd.read_csv(tmp_path / "annotations.csv")["clip"].tolist() == ["c1", "c2"]
    with pytest.raises(ValueError, match=r"prepared with other settings \(size 64 -> 96\).*overwrite=true"):
        prepare_clips(records, tmp_path, **(options | {"size": 96}))
    again = prepare_clips(records, tmp_path, **(options | {"size": 96}), overwrite=True)
    assert again.prepared == ["c1", "c2"] and cv2.imread(str(done / "000000.png")).shape == (96, 96, 3)


def test_a_clip_that_is_a_span_of_a_longer_recording_is_written_from_its_first_frame(raw_set, tmp_path):
    """CAS(ME)^3's clips are onset..offset of a recording: only that span is written, positions counted from it."""
    whole = next(r for r in raw_records(raw_set, "all") if r.clip_id == "c2")  # onset 1, apex 3, offset 6 of 8
    span = whole.replace(clip_id="c2_span", start=1, stop=7)
    summary = prepare_clips([span], tmp_path, size=SIZE, detect_frames=1, progress=False)
    row = summary.table.iloc[0]
    assert (row.onset, row.apex, row.offset, row.n_frames) == (0, 2, 5, 6)
    assert len(list((tmp_path / "s1" / "c2_span").glob("*.png"))) == 6
