"""Batch scoring benchmark: ``python -m mer.score`` against a naive per-frame loop, videos/s and peak RSS.

    python tools/bench_score.py                                   # 4 x 30 s, 1 x 5 min, + the 10-min memory check
    python tools/bench_score.py --short 8 --long 2 --no-memory-check
    python tools/bench_score.py --checkpoint outputs/train/<run>/best.pt --naive-memory

Inputs are long synthetic recordings (``write_long_video``: 640x360, 30 fps, a 112 px face, about
one micro-expression per 7.5 s, blinks, drift, flicker, H.264), written once into ``--cache`` with
a tiny checkpoint of the default model (x3d_tiny, default crop size and frame count; trained for
two steps: throughput does not depend on accuracy). Per group of videos, interleaved:

* ``ours``: ``python -m mer.score checkpoint=... input=<list> output=... progress=false
  cache_dir=<fresh>`` (a fresh plan cache, so pass 1 really runs; batch_size 16, 2 spawned workers);
* ``naive``: what one would write without the pipeline: decode every frame to RGB at native fps,
  detect the face (the same Haar detector) on every frame, crop it to the model's size and keep
  the crops in a list, then slide the model's window (the span its sampler covers for a 0.5-s
  interval, stride half of it) over the whole video, one model call per window, no workers.

Both run as subprocesses; wall time is from start to exit (imports and model loading included),
peak RSS is polled every ``--poll`` s and summed over the process tree (main + workers; shared
library pages count once per process, so the sum overstates what the machine loses). Model calls
of ``ours`` are counted by wrapping the loaded model's call (``--as-ours`` runs ``mer.score`` as
``python -m`` does, with that one wrapper).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIGS = Path(__file__).resolve().parents[1] / "mer" / "configs"
FPS = 30
CANVAS = (640, 360)
FACE = 112
SECONDS_PER_EVENT = 7.5
NAIVE_WINDOW_S = 0.5  # the naive loop scores every 0.5-s interval (MEs last <= 500 ms)


@dataclass(frozen=True)
class Group:
    """``count`` videos of ``seconds`` each, seeds from ``first_seed``."""

    name: str
    seconds: float
    count: int
    first_seed: int

    @property
    def label(self) -> str:
        length = f"{self.seconds / 60:g} min" if self.seconds >= 60 else f"{self.seconds:g} s"
        return f"{length} x {self.count}"


@dataclass
class Measured:
    """One subprocess run: wall time, peak RSS (whole tree and main process) and model work."""

    seconds: float
    peak_tree: int  # bytes: RSS summed over main + workers
    peak_main: int  # bytes: RSS of the main process
    peak_pss: int  # bytes: PSS summed over main + workers
    clips: int
    model_calls: int
    spotting: dict | None = None  # ours: MEGC counts of the spotted intervals against the sidecars' events


# ---- inputs ------------------------------------------------------------------------------------


def ensure_videos(group: Group, cache: Path) -> list[Path]:
    """The group's videos in ``cache/videos``, written once (with their ``.events.json`` sidecars)."""
    from mer.data.synthetic.long import sidecar_path, write_long_video

    paths = []
    for seed in range(group.first_seed, group.first_seed + group.count):
        path = cache / "videos" / f"long_{group.seconds:g}s_seed{seed}.mp4"
        if not (path.exists() and sidecar_path(path).exists()):
            started = time.perf_counter()
            n_events = max(1, round(group.seconds / SECONDS_PER_EVENT))
            write_long_video(path, seconds=group.seconds, fps=FPS, n_events=n_events, size=FACE, canvas=CANVAS, seed=seed)
            print(f"wrote {path} ({n_events} events) in {time.perf_counter() - started:.0f} s", flush=True)
        paths.append(path)
    return paths


def ensure_checkpoint(cache: Path) -> Path:
    """A checkpoint of the default model (configs/train.yaml), trained for 2 steps on a tiny synthetic set."""
    run_dir = cache / "model"
    best = run_dir / "best.pt"
    if best.exists():
        return best
    from hydra import compose, initialize_config_dir

    from mer.data.synthetic import generate
    from mer.engine.experiment import run

    started = time.perf_counter()
    data = generate(run_dir / "data", n_subjects=6, clips_per_subject=3, size=FACE, clip_seconds=0.3, seed=4, workers=1)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=dfme",
                f"data.annotations={data}",
                "trainer.epochs=1",
                "trainer.max_steps_per_epoch=2",
                "trainer.num_workers=0",
                "trainer.progress=false",
                "trainer.precise_bn_batches=0",
                "evaluate_test=false",
            ],
        )
    run(cfg, run_dir)
    print(f"trained {best} in {time.perf_counter() - started:.0f} s", flush=True)
    return best


# ---- measuring a subprocess --------------------------------------------------------------------


def measure(cmd: list[str], log_path: Path, poll: float, pss_every: int = 4) -> tuple[float, int, int, int]:
    """Run ``cmd``; (wall seconds, peak RSS summed over its process tree, peak RSS of the main process,
    peak PSS summed over the tree). PSS (shared pages split among the processes sharing them) costs
    more to read, so it is sampled every ``pss_every`` polls."""
    import psutil

    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        peak_tree = peak_main = peak_pss = 0
        polls = 0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                main_rss = root.memory_info().rss
            except psutil.Error:  # exited between poll() and here
                break
            rss = pss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                    pss += p.memory_full_info().pss if polls % pss_every == 0 else 0
                except psutil.Error:
                    pass
            peak_tree, peak_main, peak_pss = max(peak_tree, rss), max(peak_main, main_rss), max(peak_pss, pss)
            polls += 1
            time.sleep(poll)
        code = proc.wait()
        seconds = time.perf_counter() - started
    if code != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with {code}:\n{tail}")
    return seconds, peak_tree, peak_main, peak_pss


def run_ours(checkpoint: Path, videos: list[Path], work: Path, poll: float) -> Measured:
    listing = work / "videos.txt"
    listing.write_text("".join(f"{v}\n" for v in videos))
    stats = work / "ours_stats.json"
    overrides = [
        f"checkpoint={checkpoint}",
        f"input={listing}",
        f"output={work / 'ours.csv'}",
        "progress=false",
        f"cache_dir={work / 'plan_cache'}",
        f"hydra.run.dir={work / 'hydra'}",
    ]
    cmd = [sys.executable, __file__, "--as-ours", str(stats), *overrides]
    seconds, tree, main, pss = measure(cmd, work / "ours.log", poll)
    counts = json.loads(stats.read_text())
    return Measured(seconds, tree, main, pss, counts["clips"], counts["model_calls"], spotting_counts(work / "ours.csv", videos))


def spotting_counts(results: Path, videos: list[Path]) -> dict:
    """Pooled MEGC spotting scores (IoU >= 0.5) of the ``ok`` rows of ``results`` against each video's sidecar."""
    from mer.data.synthetic import read_long_video_info
    from mer.scoring.spotting_eval import evaluate_spotting, spotting_scores

    found: dict[str, list[tuple[int, int]]] = {str(v): [] for v in videos}
    with open(results, newline="") as file:
        for row in csv.DictReader(file):
            if row["status"] == "ok":
                found[row["video"]].append((int(row["onset"]), int(row["offset"])))
    tp = fp = fn = 0
    for video, predicted in found.items():
        r = evaluate_spotting(predicted, [(e.onset, e.offset) for e in read_long_video_info(video).events])
        tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
    return spotting_scores(tp, fp, fn)


def run_naive(checkpoint: Path, videos: list[Path], work: Path, poll: float) -> Measured:
    stats = work / "naive_stats.json"
    cmd = [sys.executable, __file__, "--as-naive", str(stats), str(checkpoint), str(work / "naive.csv"), *map(str, videos)]
    seconds, tree, main, pss = measure(cmd, work / "naive.log", poll)
    counts = json.loads(stats.read_text())
    return Measured(seconds, tree, main, pss, counts["clips"], counts["model_calls"])


# ---- the two scorers, each run in its own process -------------------------------------------------


def ours_entry(stats_path: str, overrides: list[str]) -> None:
    """``python -m mer.score <overrides>``, counting model calls and clips into ``stats_path``."""
    import atexit
    import runpy

    import mer.scoring.models as models

    counts = {"model_calls": 0, "clips": 0}
    load = models.load_scoring_model

    def counting_load(path, device):
        model = load(path, device)
        run = model.run

        def counted(clips):
            counts["model_calls"] += 1
            counts["clips"] += len(clips)
            return run(clips)

        model.run = counted
        return model

    models.load_scoring_model = counting_load  # mer.score imports it from here when run below
    atexit.register(lambda: Path(stats_path).write_text(json.dumps(counts)))
    sys.argv = ["mer.score", *overrides]
    runpy.run_module("mer.score", run_name="__main__", alter_sys=True)  # as python -m (Hydra finds configs/ by file)


def naive_window(model, fps: float) -> int:
    """Frames the model's sampler spans for a ``NAIVE_WINDOW_S`` interval (context frames included)."""
    from mer.data.build import build_clip_sampler
    from mer.data.records import ClipRecord

    sampler = build_clip_sampler(model.config.clip_sampler)
    length = int(round(NAIVE_WINDOW_S * fps))
    onset = int(fps)  # room for the context before the onset
    record = ClipRecord(
        "", "window", "", onset, onset + length // 2, onset + length, "", 0, fps=fps, n_frames=onset + length + int(fps)
    )
    indices = sampler(record, train=False)
    return indices[-1] - indices[0] + 1


def naive_entry(stats_path: str, checkpoint: str, output: str, videos: list[str]) -> None:
    """The straightforward script: every frame decoded, detected and cropped; one model call per window."""
    import av

    from mer.data.clip import ClipSpec, ClipTransform
    from mer.data.faces import FaceBox, FaceDetector, crop_face
    from mer.runtime import select_device
    from mer.scoring.models import load_scoring_model

    device = select_device("auto")
    model = load_scoring_model(checkpoint, device)
    spec = ClipSpec.from_dict(model.input)
    transform = ClipTransform(spec)  # the model's own preprocessing, as the scorer applies it
    size, num_frames = spec.source_side, model.num_frames
    detector = FaceDetector()
    calls = 0
    with open(output, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["video", "start", "start_s", "emotion", *[f"p_{c}" for c in model.class_names]])
        for video in videos:
            # Small crops kept while 0.7 MB frames come and go also fragment glibc's heap (its mmap
            # threshold adapts upwards): the process grows by far more than the crops themselves.
            crops, box = [], None
            with av.open(video) as container:
                stream = container.streams.video[0]
                fps = float(stream.average_rate)
                for frame in container.decode(stream):
                    rgb = frame.to_ndarray(format="rgb24")
                    box = detector(rgb) or box  # a frame without a detection keeps the last face
                    whole = FaceBox(0, 0, rgb.shape[1], rgb.shape[0])
                    crops.append(crop_face(rgb, box or whole, size, spec.face_margin if box else 1.0))  # (S, S, 3) each, all kept
            window = min(naive_window(model, fps), len(crops))
            for start in range(0, len(crops) - window + 1, max(1, window // 2)):
                picks = np.linspace(start, start + window - 1, num_frames).round().astype(int)
                clip = transform(np.stack([crops[i] for i in picks]))[None]  # (1, 3, T, S, S)
                probs = model(clip)["emotion"][0]
                calls += 1
                writer.writerow(
                    [video, start, round(start / fps, 4), model.class_names[int(np.argmax(probs))], *np.round(probs, 6)]
                )
    Path(stats_path).write_text(json.dumps({"model_calls": calls, "clips": calls}))


# ---- the report --------------------------------------------------------------------------------


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def report(groups: list[Group], results: dict[str, dict[str, Measured]], checkpoint: Path) -> None:
    """The markdown table (one row per group; the memory check has no naive run unless asked)."""
    from mer.runtime import select_device
    from mer.scoring.models import load_scoring_model

    model = load_scoring_model(checkpoint, select_device("cpu"))
    c, window = model.config, naive_window(model, FPS)
    print(
        f"{c.model.backbone}, {c.data.crop_size} px, {c.clip_sampler.num_frames} frames; {CANVAS[0]}x{CANVAS[1]} {FPS} fps H.264; "
        f"ours: batch_size 16, 2 spawned workers; naive: window {window} frames, stride {window // 2}, batch 1"
    )
    print()
    print(
        "| videos | ours s | naive s | ours videos/s | naive videos/s | speed-up | ours peak RSS (tree / main) | ours peak PSS | "
        "naive peak RSS | ours clips / model calls | naive clips / model calls | ours spotting TP / FP / FN (F1) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for group in groups:
        ours, naive = results[group.name]["ours"], results[group.name].get("naive")
        label = f"{group.label} (memory check)" if group.name == "memory" else group.label
        cells = [
            label,
            f"{ours.seconds:.0f}",
            f"{naive.seconds:.0f}" if naive else "not run",
            f"{group.count / ours.seconds:.3f}",
            f"{group.count / naive.seconds:.3f}" if naive else "-",
            f"{naive.seconds / ours.seconds:.1f}x" if naive else "-",
            f"{gb(ours.peak_tree)} / {gb(ours.peak_main)}",
            gb(ours.peak_pss),
            gb(naive.peak_tree) if naive else "-",
            f"{ours.clips} / {ours.model_calls}",
            f"{naive.clips} / {naive.model_calls}" if naive else "-",
            f"{ours.spotting['tp']} / {ours.spotting['fp']} / {ours.spotting['fn']} ({ours.spotting['f1']:.2f})"
            if ours.spotting
            else "-",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    for group in groups:
        ours, naive = results[group.name]["ours"], results[group.name].get("naive")
        if naive:
            ratio = naive.seconds / ours.seconds
            print(f"{group.label}: speed-up {ratio:.1f}x, goal >= 3x {'met' if ratio >= 3 else 'MISSED'}")
        if group.name == "memory":
            print(
                f"{group.label}: peak RSS {gb(ours.peak_tree)} summed over main + workers (main alone {gb(ours.peak_main)}, "
                f"PSS {gb(ours.peak_pss)}); goal <= 2.5 GB {'met' if ours.peak_tree <= 2.5e9 else 'MISSED'} by the RSS sum"
            )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--as-ours":
        return ours_entry(sys.argv[2], sys.argv[3:])
    if len(sys.argv) > 2 and sys.argv[1] == "--as-naive":
        return naive_entry(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", type=int, default=4, help="videos of --short-seconds")
    parser.add_argument("--long", type=int, default=1, help="videos of --long-seconds")
    parser.add_argument("--short-seconds", type=float, default=30.0)
    parser.add_argument("--long-seconds", type=float, default=300.0)
    parser.add_argument("--memory-seconds", type=float, default=600.0, help="length of the memory-check video")
    parser.add_argument(
        "--memory-check", action=argparse.BooleanOptionalAction, default=True, help="score one long video, ours only"
    )
    parser.add_argument("--naive-memory", action="store_true", help="also run the naive loop on the memory-check video (slow)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a tiny x3d_tiny trained once into the cache")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mer_bench_score"))
    parser.add_argument("--poll", type=float, default=0.15, help="seconds between RSS samples")
    args = parser.parse_args()

    started = time.perf_counter()
    checkpoint = (args.checkpoint or ensure_checkpoint(args.cache)).resolve()
    groups = [Group("short", args.short_seconds, args.short, 0), Group("long", args.long_seconds, args.long, 100)]
    groups = [g for g in groups if g.count > 0]
    memory = Group("memory", args.memory_seconds, 1, 200) if args.memory_check else None
    inputs = {g.name: ensure_videos(g, args.cache) for g in groups + ([memory] if memory else [])}
    print(f"inputs ready in {time.perf_counter() - started:.0f} s; checkpoint {checkpoint}", flush=True)

    results: dict[str, dict[str, Measured]] = {}
    for group in groups + ([memory] if memory else []):
        results[group.name] = {}
        ways = ["ours", "naive"] if group is not memory or args.naive_memory else ["ours"]
        for way in ways:
            with tempfile.TemporaryDirectory(prefix=f"bench_score_{way}_") as tmp:
                run = run_ours if way == "ours" else run_naive
                m = run(checkpoint, inputs[group.name], Path(tmp), args.poll)
            results[group.name][way] = m
            print(
                f"{group.label:>12} {way:>5}: {m.seconds:7.1f} s, peak RSS {gb(m.peak_tree)} (main {gb(m.peak_main)}, "
                f"PSS {gb(m.peak_pss)}), {m.clips} clips in {m.model_calls} model calls",
                flush=True,
            )
            if m.spotting:
                sp = m.spotting
                print(
                    f"{'':>19} spotting: {sp['tp']} true / {sp['fp']} false candidates, {sp['fn']} events missed "
                    f"(P {sp['precision']:.2f}, R {sp['recall']:.2f}, F1 {sp['f1']:.2f})",
                    flush=True,
                )
    print()
    report(groups + ([memory] if memory else []), results, checkpoint)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
