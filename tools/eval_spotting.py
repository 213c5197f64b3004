"""Spotting evaluation on long synthetic videos: MEGC precision / recall / F1 at IoU >= 0.5.

    python tools/eval_spotting.py                                  # 10 x 60 s at 30 fps + 3 x 30 s at 200 fps, seeds 1000+
    python tools/eval_spotting.py --first-seed 0 --videos30 4 --videos200 2    # the tuning seeds
    python tools/eval_spotting.py --plot docs/img/spotting_signal.png          # also draw one video's signal

Each video (``write_long_video``: one subject, several MEs of 40-500 ms, blinks at 0.3/s, head
drift, flicker, noise, H.264) is decoded once, streamed frame by frame; the face square (its
position is in the sidecar) is pushed into every method's spotter at once. Methods: the default
:class:`MotionSpotter`, ablations of it (one design choice switched off each), and a naive
baseline (whole-face difference of consecutive frames, no baseline removal). Counts are pooled
over the videos of a group, then scored. Videos are cached in ``--cache`` by seed and settings.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mer.data.synthetic import LongVideoInfo, read_long_video_info, sidecar_path, write_long_video
from mer.scoring.spotting import MotionSpotter, SpottingConfig, find_intervals, remove_baseline, threshold_level
from mer.scoring.spotting_eval import evaluate_spotting, spotting_scores

CROP = 64  # px, the spotter's working size


@dataclass(frozen=True)
class VideoSpec:
    seed: int
    fps: float
    seconds: float
    n_events: int

    @property
    def name(self) -> str:
        return f"long_s{self.seed}_{self.fps:g}fps_{self.seconds:g}s_{self.n_events}ev.mp4"


def ensure_video(spec: VideoSpec, cache: Path) -> Path:
    """The video of ``spec`` in ``cache``, written once."""
    path = cache / spec.name
    if not (path.exists() and sidecar_path(path).exists()):
        write_long_video(path, seconds=spec.seconds, fps=spec.fps, n_events=spec.n_events, seed=spec.seed)
    return path


def face_crops(path: Path, info: LongVideoInfo) -> Iterator[np.ndarray]:
    """Decoded frames one at a time, cut to the face square: uint8 (size, size, 3)."""
    import av

    x, y, size = info.face
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")[y : y + size, x : x + size]


class FrameDifferenceSpotter:
    """The naive baseline: mean |I_t - I_{t-1}| over the whole face, threshold on the raw signal."""

    def __init__(self, fps: float, config: SpottingConfig) -> None:
        self.fps, self.config = fps, replace(config, baseline_s=0.0)
        self.previous: np.ndarray | None = None
        self.values: list[float] = []

    def push(self, face: np.ndarray) -> None:
        import cv2

        crop = cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (CROP, CROP), interpolation=cv2.INTER_AREA).astype(np.float32)
        self.values.append(0.0 if self.previous is None else float(np.abs(crop - self.previous).mean()))
        self.previous = crop

    @property
    def signal(self) -> np.ndarray:
        return np.asarray(self.values)

    def finish(self):
        return find_intervals(self.signal, self.fps, self.config)


def methods(config: SpottingConfig) -> dict[str, Callable[[float], object]]:
    """Name -> a spotter factory of the fps; the default first, then one change each."""
    g = config.grid
    return {
        "default": lambda fps: MotionSpotter(fps, config, CROP),
        "no baseline removal": lambda fps: MotionSpotter(fps, replace(config, baseline_s=0.0), CROP),
        "whole face (no top blocks)": lambda fps: MotionSpotter(
            fps, replace(config, top_blocks=g * g, subtract_median_block=False), CROP
        ),
        "no median-block subtraction": lambda fps: MotionSpotter(fps, replace(config, subtract_median_block=False), CROP),
        f"mask_eyes={not config.mask_eyes}": lambda fps: MotionSpotter(
            fps, replace(config, mask_eyes=not config.mask_eyes), CROP
        ),
        "naive frame difference": lambda fps: FrameDifferenceSpotter(fps, config),
    }


def run(
    specs: list[VideoSpec], cache: Path, config: SpottingConfig, *, keep_signal_of: int | None = None
) -> tuple[list[dict], dict]:
    """Rows (method, video, fps, tp, fp, fn) for every method on every video, and the default
    spotter's signal of video ``keep_signal_of`` (index into specs) for the plot."""
    rows, kept = [], {}
    for n, spec in enumerate(specs):
        started = time.perf_counter()
        path = ensure_video(spec, cache)
        info = read_long_video_info(path)
        spotters = {name: make(info.fps) for name, make in methods(config).items()}
        for face in face_crops(path, info):
            for spotter in spotters.values():
                spotter.push(face)
        truth = [(e.onset, e.offset) for e in info.events]
        for name, spotter in spotters.items():
            found = spotter.finish()
            counts = evaluate_spotting(found, truth)
            rows.append(dict(method=name, video=spec.name, fps=info.fps, tp=counts["tp"], fp=counts["fp"], fn=counts["fn"]))
            if name == "default" and n == keep_signal_of:
                kept = dict(info=info, signal=spotter.signal, intervals=found, spec=spec)
        d = next(r for r in rows[::-1] if r["method"] == "default" and r["video"] == spec.name)
        print(
            f"  {spec.name}: {info.n_frames} frames, {time.perf_counter() - started:.1f} s; default tp={d['tp']} fp={d['fp']} fn={d['fn']}",
            flush=True,
        )
    return rows, kept


def table(rows: list[dict]) -> str:
    """Markdown: per method, P / R / F1 pooled over all videos, then F1 per fps group."""
    fps_groups = sorted({r["fps"] for r in rows})
    head = "| method | TP | FP | FN | precision | recall | F1 | " + " | ".join(f"F1 @ {f:g} fps" for f in fps_groups) + " |"
    lines = [head, "|" + "---|" * (7 + len(fps_groups))]
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == name]
        total = spotting_scores(*(sum(r[k] for r in mine) for k in ("tp", "fp", "fn")))
        per_fps = [
            spotting_scores(*(sum(r[k] for r in mine if r["fps"] == f) for k in ("tp", "fp", "fn")))["f1"] for f in fps_groups
        ]
        lines.append(
            f"| {name} | {total['tp']} | {total['fp']} | {total['fn']} | {total['precision']:.2f} | {total['recall']:.2f} | "
            f"{total['f1']:.2f} | " + " | ".join(f"{v:.2f}" for v in per_fps) + " |"
        )
    return "\n".join(lines)


def plot_signal(kept: dict, config: SpottingConfig, out: Path, *, seconds: float | None = 30.0) -> None:
    """The baseline-removed signal of one video with its threshold, true intervals (green),
    spotted intervals (red bars, TP solid / FP hatched) and blinks (orange ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info, fps = kept["info"], kept["info"].fps
    contrast = remove_baseline(kept["signal"], fps, config)
    level = threshold_level(contrast, config)
    end = len(contrast) if seconds is None else min(len(contrast), int(seconds * fps))
    t = np.arange(end) / fps
    fig, ax = plt.subplots(figsize=(12, 3.4))
    for e in info.events:
        if e.onset < end:
            ax.axvspan(e.onset / fps, (e.offset + 1) / fps, color="tab:green", alpha=0.3, lw=0)
            ax.text(
                e.apex / fps,
                1.0,
                e.emotion,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=7,
                color="tab:green",
            )
    truth = [(e.onset, e.offset) for e in info.events]
    for iv in kept["intervals"]:
        if iv.onset < end:
            hit = evaluate_spotting([iv], truth)["tp"] == 1
            ax.add_patch(
                plt.Rectangle(
                    (iv.onset / fps, 0.0),
                    iv.n_frames / fps,
                    0.07,
                    transform=ax.get_xaxis_transform(),
                    color="tab:red",
                    fill=hit,
                    hatch=None if hit else "////",
                    lw=0.8,
                )
            )
    for first, last in info.blinks:
        if first < end:
            ax.axvspan(first / fps, (last + 1) / fps, ymin=0.92, ymax=1.0, color="tab:orange", lw=0)
    ax.plot(t, contrast[:end], lw=0.8, color="k")
    ax.axhline(level, color="tab:red", ls="--", lw=0.8)
    ax.set_xlim(0, t[-1])
    ax.set_ylim(min(contrast[:end].min(), -0.1 * level) * 1.1, None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("motion - sliding median (grey levels)")
    ax.set_title(
        f"{kept['spec'].name}: green = true MEs, orange = blinks, red bars = spotted (hatched: false), dashed = threshold",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first-seed", type=int, default=1000, help="videos use seeds first, first+1, ... (tuning used 0+)")
    parser.add_argument("--videos30", type=int, default=10)
    parser.add_argument("--seconds30", type=float, default=60.0)
    parser.add_argument("--events30", type=int, default=8)
    parser.add_argument("--videos200", type=int, default=3)
    parser.add_argument("--seconds200", type=float, default=30.0)
    parser.add_argument("--events200", type=int, default=6)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mer_spotting"))
    parser.add_argument("--plot", type=Path, default=None, help="draw the first 30 s of the first video's signal here")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="SpottingConfig overrides, e.g. threshold=5")
    args = parser.parse_args()

    config = SpottingConfig()
    for item in args.set:
        key, value = item.split("=", 1)
        config = replace(
            config,
            **{
                key: type(getattr(config, key))(value)
                if not isinstance(getattr(config, key), bool)
                else value.lower() in ("1", "true", "yes")
            },
        )
    s = args.first_seed
    specs = [VideoSpec(s + i, 30.0, args.seconds30, args.events30) for i in range(args.videos30)]
    specs += [VideoSpec(s + args.videos30 + i, 200.0, args.seconds200, args.events200) for i in range(args.videos200)]
    print(f"{len(specs)} videos, seeds {s}..{s + len(specs) - 1}; {config}", flush=True)
    started = time.perf_counter()
    rows, kept = run(specs, args.cache, config, keep_signal_of=0 if args.plot else None)
    print(f"\n{table(rows)}\n\n({time.perf_counter() - started:.0f} s)")
    if args.plot:
        plot_signal(kept, config, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
