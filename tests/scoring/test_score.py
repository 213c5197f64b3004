"""python -m mer.score on real-world-like inputs: codecs, VFR, frame folders, no face, broken files;
resume after a kill, shards and merge, output types, exported models."""

from __future__ import annotations

import fractions
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from mer.data.synthetic import generate
from mer.data.synthetic.long import write_long_video
from mer.data.video import open_video, write_frame_folder, write_video
from mer.engine.metrics import present_aus
from mer.models.checkpoint import load_checkpoint
from mer.scoring.models import load_scoring_model
from mer.scoring.outputs import ResultWriter, merge_parts, read_rows

CONFIGS = Path(__file__).resolve().parents[2] / "mer" / "configs"
FACE = 96  # face square in the test recordings: big enough for the Haar cascade
CANVAS = (192, 144)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny model trained for one epoch on 64 px synthetic clips."""
    from mer.engine.experiment import run

    data = generate(
        tmp_path_factory.mktemp("train_data"), n_subjects=6, clips_per_subject=3, size=64, clip_seconds=0.3, seed=4, workers=2
    )
    out = tmp_path_factory.mktemp("run")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=dfme",
                f"data.annotations={data}",
                "data.crop_size=64",
                "clip_sampler.num_frames=8",
                "trainer.epochs=1",
                "trainer.num_workers=0",
                "trainer.progress=false",
            ],
        )
    run(cfg, out)
    return out / "best.pt"


def reencode(source: Path, target: Path, codec: str, *, vfr: bool = False) -> Path:
    """The frames of ``source`` in another codec/container; ``vfr`` gives irregular timestamps."""
    frames = open_video(source, "pyav").get_frames(range(len(open_video(source, "pyav"))))
    if not vfr:
        return write_video(target, frames, 30, codec=codec, pix_fmt="yuvj420p" if codec == "mjpeg" else "yuv420p")
    with av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        t = 0
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
            t += 25 if i % 3 else 45  # 40 fps and 22 fps alternating
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    base = root / "a_h264.mp4"
    events = write_long_video(base, seconds=4.0, fps=30, n_events=2, size=FACE, canvas=CANVAS, seed=1, blink_rate=0.0)
    assert len(events) == 2
    (root / "nested").mkdir()
    write_long_video(root / "nested" / "b_h264.mov", seconds=3.0, fps=30, n_events=1, size=FACE, canvas=CANVAS, seed=2)
    reencode(base, root / "c_hevc.mkv", "libx265")
    reencode(base, root / "d_mjpeg.avi", "mjpeg")
    reencode(base, root / "e_vfr.mp4", "libx264", vfr=True)
    frames = open_video(base, "pyav").get_frames(range(60))
    write_frame_folder(root / "f_frames", frames)
    rng = np.random.default_rng(0)
    write_video(
        root / "g_noface.mp4",
        [np.full((144, 192, 3), 100, np.uint8) + rng.integers(0, 3, (144, 192, 3), dtype=np.uint8) for _ in range(60)],
        30,
    )
    cut = base.read_bytes()
    (root / "h_truncated.mp4").write_bytes(cut[: len(cut) // 3])
    (root / "i_notavideo.mp4").write_text("not a video\n" * 100)
    # the index at the front (faststart), the file cut at 60%: the container still declares every frame
    whole = root.parent / "faststart.mp4"
    write_video(whole, open_video(base, "pyav").get_frames(range(120)), 30, container_options={"movflags": "faststart"})
    (root / "j_faststart_cut.mp4").write_bytes(whole.read_bytes()[: int(0.6 * whole.stat().st_size)])
    return root


def score_cfg(checkpoint: Path, inputs, output: Path, *extra: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            "score",
            overrides=[
                f"checkpoint={checkpoint}",
                f"input={inputs}",
                f"output={output}",
                "num_workers=2",
                "progress=false",
                f"cache_dir={output.parent / 'cache'}",
                *extra,
            ],
        )


def test_scores_a_folder_of_real_world_like_inputs(checkpoint, recordings, tmp_path):
    from mer.score import score

    summary = score(score_cfg(checkpoint, recordings, tmp_path / "results.csv", f"frames_output={tmp_path / 'frames.csv'}"))
    rows = pd.read_csv(tmp_path / "results.csv")
    status = rows.groupby(rows["video"].map(lambda v: Path(v).name))["status"].first().to_dict()
    assert set(status) == {
        "a_h264.mp4",
        "b_h264.mov",
        "c_hevc.mkv",
        "d_mjpeg.avi",
        "e_vfr.mp4",
        "f_frames",
        "g_noface.mp4",
        "h_truncated.mp4",
        "i_notavideo.mp4",
        "j_faststart_cut.mp4",
    }
    for name in ("a_h264.mp4", "b_h264.mov", "c_hevc.mkv", "d_mjpeg.avi", "e_vfr.mp4", "f_frames"):
        assert status[name] in ("ok", "no_event"), (name, rows[rows.video.str.endswith(name)].reason.tolist())
    assert status["a_h264.mp4"] == "ok" and status["g_noface.mp4"] == "no_face"
    assert status["h_truncated.mp4"] == status["i_notavideo.mp4"] == status["j_faststart_cut.mp4"] == "error"
    errors = rows[rows.status == "error"]
    assert all(isinstance(r, str) and r and "\n" not in r for r in errors.reason)
    assert summary == {"ok": summary["ok"], "no_face": 1, "no_event": summary["no_event"], "error": 3, "skipped": 0}
    cut = rows[rows.video.str.endswith("j_faststart_cut.mp4")].reason.iloc[0]
    assert "the stream ends at frame" in cut and "of the 120 its container declares: truncated or damaged" in cut
    ok = rows[rows.status == "ok"]
    classes = ok.filter(regex="^p_").drop(columns="p_emotion").iloc[:, :7]
    assert np.allclose(classes.sum(axis=1), 1.0, atol=1e-4) and np.allclose(ok.p_emotion, classes.max(axis=1))
    assert (classes.idxmax(axis=1).str[2:] == ok.emotion).all()
    assert (ok[["face_w", "face_h"]] > 0).all().all()  # the face box each clip was cropped by
    assert (ok.onset <= ok.apex).all() and (ok.apex <= ok.offset).all()
    # seconds follow the real timestamps: in the VFR file they are not frame / 30
    vfr = ok[ok.video.str.endswith("e_vfr.mp4")]
    if len(vfr):
        assert not np.allclose(vfr.apex_s, vfr.apex / 30.0)
    frames = pd.read_csv(tmp_path / "frames.csv")
    assert len(frames) == 8 * len(ok) and {"frame", "time_s", "p_AU12"} <= set(frames.columns)
    # the AUs named present are those at or above the checkpoint's per-AU thresholds (chosen on validation)
    ckpt = load_checkpoint(checkpoint)
    assert ckpt["au_thresholds"] is not None
    p_au = ok[[f"p_AU{au:02d}" for au in ckpt["au_names"]]].to_numpy()
    assert ok["aus"].fillna("").tolist() == present_aus(p_au, ckpt["au_thresholds"], ckpt["au_names"])


def test_a_rerun_skips_finished_videos_and_overwrite_redoes_them(checkpoint, recordings, tmp_path):
    from mer.score import score

    videos = f"[{recordings / 'a_h264.mp4'},{recordings / 'g_noface.mp4'}]"
    first = score(score_cfg(checkpoint, videos, tmp_path / "r.jsonl"))
    assert first["skipped"] == 0 and first["no_face"] == 1
    again = score(score_cfg(checkpoint, videos, tmp_path / "r.jsonl"))
    assert again == {"ok": 0, "no_face": 0, "no_event": 0, "error": 0, "skipped": 2}
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(read_rows(tmp_path / "r.jsonl")) == len([json.loads(line) for line in lines])
    redone = score(score_cfg(checkpoint, videos, tmp_path / "r.jsonl", "overwrite=true"))
    assert redone["skipped"] == 0


def test_one_table_one_model_and_failures_stay_failures(checkpoint, recordings, tmp_path):
    from mer.score import score

    out = tmp_path / "r.csv"
    inputs = f"[{recordings / 'a_h264.mp4'},{recordings / 'i_notavideo.mp4'}]"
    assert score(score_cfg(checkpoint, inputs, out))["error"] == 1
    rows = pd.read_csv(out, dtype={"model": str})  # a hex digest such as 106e15789184 would read as a float
    assert set(rows["model"]) == {load_scoring_model(checkpoint, torch.device("cpu")).digest[:12]}
    # a re-run over a table holding an error row counts it as failed, not skipped
    assert score(score_cfg(checkpoint, inputs, out)) == {"ok": 0, "no_face": 0, "no_event": 0, "error": 1, "skipped": 1}
    # another model (other weights) is refused before it writes a row; the table is untouched
    other = load_checkpoint(checkpoint)
    name = next(k for k, v in other["model"].items() if v.is_floating_point())
    other["model"][name] = other["model"][name] + 1.0
    torch.save(other, tmp_path / "other.pt")
    before = out.read_bytes()
    with pytest.raises(ValueError, match=r"r.csv: written by the model .*best.pt \(sha256 [0-9a-f]{12}\), not .*other.pt"):
        score(score_cfg(tmp_path / "other.pt", str(recordings / "g_noface.mp4"), out))
    assert out.read_bytes() == before
    assert score(score_cfg(tmp_path / "other.pt", str(recordings / "g_noface.mp4"), out, "overwrite=true"))["no_face"] == 1
    # nothing to score is an error naming what was searched, exit code 2
    empty = subprocess.run(
        [
            sys.executable,
            "-m",
            "mer.score",
            f"checkpoint={checkpoint}",
            f"input={tmp_path}/nothing*.mp4",
            f"output={tmp_path / 'e.csv'}",
            f"hydra.run.dir={tmp_path / 'h'}",
        ],
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 2 and empty.stderr.strip().splitlines()[-1].startswith(
        "mer-score: error: no video or frame folder found"
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_resuming_a_table_of_an_older_version_or_another_model(tmp_path, suffix):
    out = tmp_path / f"r{suffix}"
    ResultWriter(out, ["video", "status", "p_AU4"]).write_video("a", "ok", [{"video": "a", "status": "ok", "p_AU4": 0.7}])
    # a newer version adds a column: the finished rows are kept, under the new header, the new cell empty
    writer = ResultWriter(out, ["video", "status", "aus", "p_AU4"])
    writer.write_video("b", "ok", [{"video": "b", "status": "ok", "aus": "AU4", "p_AU4": 0.9}])
    rows = read_rows(out)
    assert [(r["video"], r["aus"] or "", float(r["p_AU4"])) for r in rows] == [("a", "", 0.7), ("b", "AU4", 0.9)]
    if suffix == ".csv":
        assert pd.read_csv(out).columns.tolist() == ["video", "status", "aus", "p_AU4"]
    # a model with other AUs would mix its rows into these: refused, nothing lost
    before = out.read_bytes()
    with pytest.raises(ValueError, match=rf"r\{suffix}: written with other columns \(aus, p_AU4 are not this model's\)"):
        ResultWriter(out, ["video", "status", "p_AU12"])
    assert out.read_bytes() == before


def test_a_crash_between_rows_and_done_line_loses_only_that_video(tmp_path):
    out = tmp_path / "r.csv"
    writer = ResultWriter(out, ["video", "status", "x"])
    writer.write_video("a", "ok", [{"video": "a", "status": "ok", "x": 1}, {"video": "a", "status": "ok", "x": 2}])
    with open(out, "a") as f:  # b's rows got out, its done line did not, and the last row was cut
        f.write("b,ok,1\nb,o")
    again = ResultWriter(out, ["video", "status", "x"])
    assert again.done == {"a": "ok"}
    assert [r["video"] for r in read_rows(out)] == ["a", "a"] and out.read_text().endswith("\n")


@pytest.mark.slow
def test_kill_and_resume_equals_one_uninterrupted_run(checkpoint, recordings, tmp_path):
    inputs = (
        f"[{','.join(str(recordings / n) for n in ('a_h264.mp4', 'nested/b_h264.mov', 'c_hevc.mkv', 'd_mjpeg.avi', 'f_frames'))}]"
    )

    def command(output: Path, *extra):
        return [
            sys.executable,
            "-m",
            "mer.score",
            f"checkpoint={checkpoint}",
            f"input={inputs}",
            f"output={output}",
            "num_workers=0",
            "progress=false",
            "batch_size=1",
            f"cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'h'}",
            *extra,
        ]

    subprocess.run(command(tmp_path / "whole.csv"), check=True, capture_output=True)
    shutil.rmtree(tmp_path / "cache")
    process = subprocess.Popen(command(tmp_path / "killed.csv"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = tmp_path / "killed.csv.state" / "done.txt"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not (done.exists() and done.read_text().count("\n") >= 1):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = done.read_text().count("\n") if done.exists() else 0
    assert 1 <= finished < 5, "the run was not killed mid-way"
    resumed = subprocess.run(command(tmp_path / "killed.csv"), capture_output=True, text=True)
    assert resumed.returncode == 0 and f"skipped {finished}" in resumed.stderr
    whole = pd.read_csv(tmp_path / "whole.csv").sort_values(["video", "interval"]).reset_index(drop=True)
    killed = pd.read_csv(tmp_path / "killed.csv").sort_values(["video", "interval"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, killed, check_exact=False, atol=1e-5)


def test_two_shards_merged_equal_one_run(checkpoint, recordings, tmp_path):
    from mer.score import score

    inputs = f"[{','.join(str(recordings / n) for n in ('a_h264.mp4', 'nested/b_h264.mov', 'g_noface.mp4', 'i_notavideo.mp4'))}]"
    score(score_cfg(checkpoint, inputs, tmp_path / "one.csv"))
    for i in range(2):
        score(score_cfg(checkpoint, inputs, tmp_path / "two.csv", f"shard={i}/2"))
    assert (tmp_path / "two.part-0-of-2.csv").exists() and (tmp_path / "two.part-1-of-2.csv").exists()
    merge_parts(tmp_path / "two.csv")
    one = pd.read_csv(tmp_path / "one.csv").sort_values(["video", "interval"]).reset_index(drop=True)
    two = pd.read_csv(tmp_path / "two.csv")
    pd.testing.assert_frame_equal(one, two, check_exact=False, atol=1e-6)
    (tmp_path / "three.part-1-of-2.csv").write_text("video,status\n")
    with pytest.raises(FileNotFoundError, match=r"shards \[0\] of 2 are missing"):
        merge_parts(tmp_path / "three.csv")


def test_failures_exit_non_zero_with_a_summary(checkpoint, recordings, tmp_path):
    inputs = f"[{recordings / 'a_h264.mp4'},{recordings / 'i_notavideo.mp4'}]"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mer.score",
            f"checkpoint={checkpoint}",
            f"input={inputs}",
            f"output={tmp_path / 'r.parquet'}",
            "num_workers=0",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'h'}",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "done 1, skipped 0, failed 1" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("mer-score: 1 video(s) failed; their rows in ")
    table = pd.read_parquet(tmp_path / "r.parquet")
    assert set(table.status) >= {"error"} and table[table.status == "error"].reason.str.contains("not a video").all()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_models_score_like_the_checkpoint(checkpoint, recordings, tmp_path, fmt):
    from mer.export import export
    from mer.score import score

    exported = export(checkpoint, fmt, tmp_path / ("m.onnx" if fmt == "onnx" else "m.ts"))
    inputs = str(recordings / "a_h264.mp4")
    score(score_cfg(checkpoint, inputs, tmp_path / "eager.csv"))
    score(score_cfg(exported, inputs, tmp_path / "exported.csv"))
    eager, other = pd.read_csv(tmp_path / "eager.csv"), pd.read_csv(tmp_path / "exported.csv")
    probs = [c for c in eager.columns if c.startswith("p_")]
    assert len(eager) >= 1 and list(eager.emotion) == list(other.emotion)
    assert np.abs(eager[probs].to_numpy() - other[probs].to_numpy()).max() <= 1e-4
    # the exported model keeps the checkpoint's AU thresholds
    thresholds = load_checkpoint(checkpoint)["au_thresholds"]
    assert json.loads(exported.with_name(exported.name + ".json").read_text())["au_thresholds"] == thresholds
    assert load_scoring_model(exported, torch.device("cpu")).au_thresholds == thresholds
    if fmt == "onnx":  # an ONNX file carries its metadata: it scores without the sidecar
        exported.with_name(exported.name + ".json").unlink()
        alone = load_scoring_model(exported, torch.device("cpu"))
        assert alone.au_thresholds == thresholds and alone.input == load_checkpoint(checkpoint)["input"]


def test_the_python_api_gives_the_command_line_table(checkpoint, recordings, tmp_path):
    import mer
    from mer.score import score

    inputs = [recordings / "a_h264.mp4", recordings / "g_noface.mp4", recordings / "i_notavideo.mp4"]
    score(score_cfg(checkpoint, f"[{','.join(map(str, inputs))}]", tmp_path / "cli.csv"))
    model = mer.load_model(checkpoint, device="cpu")
    table = mer.predict(inputs, model=model, cache_dir=tmp_path / "cache")
    cli = pd.read_csv(tmp_path / "cli.csv", keep_default_na=False)
    assert list(table.columns) == list(cli.columns) and len(table) == len(cli)
    table, cli = (t.sort_values(["video", "interval"], key=lambda c: c.astype(str)).reset_index(drop=True) for t in (table, cli))
    assert table.status.tolist() == cli.status.tolist() and table.emotion.fillna("").tolist() == cli.emotion.tolist()
    ok = table.status == "ok"
    probs = [c for c in table.columns if c.startswith("p_")]
    assert np.allclose(table.loc[ok, probs].astype(float), cli.loc[ok, probs].astype(float), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no video or frame folder found"):
        mer.predict(tmp_path / "empty*", model=model)
    with pytest.raises(ValueError, match="give one of checkpoint=... or model="):
        mer.predict(inputs, checkpoint=checkpoint, model=model)


def test_shards_come_from_the_command_line_a_slurm_array_or_torchrun(monkeypatch):
    from mer.scoring.inputs import parse_shard

    for key in (
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "RANK",
        "WORLD_SIZE",
    ):
        monkeypatch.delenv(key, raising=False)
    assert parse_shard(None) is None and parse_shard("1/4") == (1, 4)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert parse_shard(None) == (1, 2)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")  # sbatch --array=1-4: tasks 1..4
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    assert parse_shard(None) == (2, 4) and parse_shard("0/3") == (0, 3)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "8")  # --array=0-12:4: tasks 0, 4, 8, 12
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    monkeypatch.setenv("SLURM_ARRAY_TASK_STEP", "4")
    assert parse_shard(None) == (2, 4)
    with pytest.raises(ValueError, match=r"shard='5/4': I must be in 0..N-1"):
        parse_shard("5/4")


def test_annotated_intervals_are_scored_without_spotting(checkpoint, tmp_path):
    from mer.score import score

    data = generate(tmp_path / "clips", n_subjects=2, clips_per_subject=2, size=96, clip_seconds=0.3, seed=5, workers=1)
    cfg = score_cfg(checkpoint, "unused", tmp_path / "r.csv", "data=dfme", f"data.annotations={data}")
    summary = score(cfg)
    rows = pd.read_csv(tmp_path / "r.csv")
    annotated = pd.read_csv(data)
    assert summary["error"] == 0 and len(rows) == len(annotated)
    ok = rows[rows.status == "ok"].set_index("clip_id")
    truth = annotated.set_index("clip")
    assert (ok.apex == truth.loc[ok.index, "apex"]).all()


def test_batch_size_caps_every_model_call(tmp_path):
    """Chunks from workers are gathered across videos, but no model call exceeds batch_size clips."""
    import torch

    from mer.scoring.models import ScoringModel
    from mer.scoring.pipeline import Candidate, VideoPlan
    from mer.scoring.run import Scorer, columns

    calls = []

    def run(clips: torch.Tensor) -> dict:
        calls.append(len(clips))
        b, t = clips.shape[0], clips.shape[2]
        return {"emotion": np.full((b, 2), 0.5), "clip_aus": np.zeros((b, 1)), "frame_aus": np.zeros((b, t, 1))}

    model = ScoringModel(run, None, ["a", "b"], [12])
    writer = ResultWriter(tmp_path / "out.csv", columns(model)[0])
    scorer = Scorer(model, writer, batch_size=4, frames=False)
    for v in range(3):  # three videos of 3 clips each: 9 clips
        plan = VideoPlan("ok", 30.0, 100, [Candidate(i, i + 1, i + 2, times=[0.0, 0.0, 0.0]) for i in range(3)])
        scorer.add(
            {
                "video": f"v{v}.mp4",
                "status": "ok",
                "plan": plan,
                "first": 0,
                "clips": torch.zeros(3, 3, 2, 8, 8),
                "indices": np.zeros((3, 2), np.int64),
                "last": True,
            }
        )
    scorer.flush()
    writer.finish()
    assert max(calls) <= 4 and sum(calls) == 9
    assert len(read_rows(tmp_path / "out.csv")) == 9 and scorer.counts["ok"] == 3


@pytest.mark.parametrize(
    "extra, size",
    [
        ([], 56),
        (["data.resize=80"], 56),
        (["data.crop_size=28", "data.motion.size=64", "model=frame_cnn", "clip_sampler=onset_apex"], 28),
    ],
)
def test_evaluation_and_scoring_build_the_same_tensors_from_the_same_frames(tmp_path, extra, size):
    """The checkpoint's input spec drives both paths: ClipDataset (training's evaluation,
    mer-evaluate) and the scoring workers (mer-score, mer.predict) give the model the same tensor."""

    from mer.cli import compose
    from mer.data.build import load_records
    from mer.data.clip import ClipSpec
    from mer.data.samplers import build_sampler
    from mer.engine.experiment import run
    from mer.evaluate import evaluation_set
    from mer.models.checkpoint import load_model
    from mer.scoring.jobs import VideoJobs
    from mer.scoring.spotting import SpottingConfig

    data = generate(tmp_path / "clips", n_subjects=4, clips_per_subject=2, size=64, clip_seconds=0.3, seed=6, workers=1)
    cfg = compose(
        "train",
        [
            "data=dfme",
            f"data.annotations={data}",
            "data.crop_size=56",
            "clip_sampler.num_frames=6",
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=1",
            "trainer.num_workers=0",
            "trainer.progress=false",
            *extra,
        ],
    )
    run(cfg, tmp_path / "run")
    loaded = load_model(tmp_path / "run" / "best.pt")
    assert loaded.input["representation"] == cfg.data.representation == "flow_strain" and loaded.input["size"] == size
    records = load_records(cfg.data)
    evaluated = {item["clip_id"]: item["clip"] for item in evaluation_set(records, cfg.data, loaded)}
    spec, sampler = ClipSpec.from_dict(loaded.input), dict(loaded.config.clip_sampler)
    jobs = VideoJobs(
        [Path(r.path) for r in records],
        sampler=build_sampler(sampler.pop("name"), **sampler),
        spec=spec,
        face={"enabled": False},
        spotting=SpottingConfig(),
        batch_size=4,
        frames_fps=30.0,
        cache=tmp_path / "cache",
        records_by_video={r.path: [r] for r in records},
    )
    scored = {item["plan"].candidates[item["first"]].clip_id: item["clips"][0] for item in jobs}
    assert set(scored) == set(evaluated) and len(scored) == 8
    for clip_id, clip in scored.items():
        assert clip.shape == (3, loaded.input["num_frames"], size, size)
        assert torch.equal(clip, evaluated[clip_id]), clip_id
