"""Loader benchmark: keyframe loading through ClipDataset vs decoding the whole clip then indexing.

    python tools/bench_loader.py [--clips 8] [--num-frames 16] [--size 224] [--repeats 3]

For each backend (decord, pyav, torchcodec when installed) and each clip kind (200 fps x 300 frames,
500 fps x 1200 frames, 224x224 H.264 generated on the fly), it measures in one run:

* ``dataset``: clips/s of ``ClipDataset[i]`` with the keyframe sampler (opens, decodes only the
  sampled frames, builds tensors and targets; no augmentation);
* ``raw``: clips/s of ``open_video(path).get_frames(indices)`` for the same indices;
* ``full``: clips/s of the naive way: decode every frame of the clip, then index.

and prints the ratios keyframe/full (goal >= 5x on 500-fps clips) and the Dataset's overhead over
the raw call (goal <= 15%).

    python tools/bench_loader.py --input flow [--clips 48] [--workers 2]

The cost of the flow input, on the default synthetic set with the default training config
(``mer.cli.compose("train")``): clips/s of ``ClipDataset[i]`` with the flow cache cold (flows
computed) and warm (read back), in this process, for evaluation clips (fixed frames); then the
training DataLoader (``--workers`` processes, random frames, so flows are computed) against the
default model's training step on the same batches, and their ratio (goal: loader >= 2x the step).

    python tools/bench_loader.py --input jitter [--clips 48] [--epochs 8] [--num-frames 8] [--jitter 0.25]

The cost of jittered keyframes (frames drawn anew each epoch) with the default flow input, epoch by
epoch, in this process: flows computed for every draw (no cache) against flows kept pair by pair
(first frame, frame t), both given the same draws, clip by clip interleaved. The pair cache starts
cold, as a training run's does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mer.data.dataset import ClipDataset
from mer.data.records import ClipRecord
from mer.data.samplers import build_sampler
from mer.data.video import list_backends, open_video, write_video

KINDS = {"200fps x 300": (200, 300), "500fps x 1200": (500, 1200)}


def make_clip(path: Path, fps: int, n: int, size: int, seed: int) -> ClipRecord:
    """A textured moving scene (compresses like real video, unlike noise) with an event in the middle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.integers(60, 200, 3)
    frames = []
    for t in range(n):
        phase = 2 * np.pi * t / fps
        img = base[None, None, :] + 40 * np.sin((xx[..., None] + 3 * t) / 17.0 + phase) * np.cos(yy[..., None] / 23.0)
        img += rng.normal(0, 4, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    write_video(path, frames, fps, crf=23, gop=fps // 2)
    onset = int(rng.integers(n // 4, n // 2))
    length = int(0.2 * fps)
    return ClipRecord("s", path.stem, str(path), onset, onset + length // 3, onset + length, "happiness", 0, fps=fps, n_frames=n)


def rates(fns: dict, items, repeats: int = 3) -> dict[str, float]:
    """Clips/s of each way, interleaved clip by clip so that machine noise hits all alike.

    Each clip's time is the median over ``repeats``; the rate is clips over the summed times.
    """
    for fn in fns.values():
        fn(items[0])  # warm caches (probe, codec init)
    times = {name: np.zeros((repeats, len(items))) for name in fns}
    for r in range(repeats):
        for i, item in enumerate(items):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(item)
                times[name][r, i] = time.perf_counter() - start
    return {name: len(items) / np.median(t, axis=0).sum() for name, t in times.items()}


def full_decode(record: ClipRecord, backend: str, indices) -> np.ndarray:
    """The naive way: every frame decoded, then indexed."""
    if backend == "decord":
        import decord

        reader = decord.VideoReader(record.path, ctx=decord.cpu(0))
        return reader.get_batch(list(range(len(reader)))).asnumpy()[indices]
    if backend == "pyav":
        import av

        with av.open(record.path) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])[indices]
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(record.path)
    return decoder.get_frames_in_range(0, len(decoder)).data.numpy()[indices]


def available_backends() -> list[str]:
    names = []
    for name in list_backends():
        if name == "torchcodec":
            try:
                from torchcodec.decoders import VideoDecoder  # noqa: F401
            except (ImportError, RuntimeError, OSError):
                continue
        names.append(name)
    return names


def flow_cost(clips: int, workers: int, repeats: int) -> None:
    """The flow input's cost: cold and warm cache, and the training loader against the training step."""
    import torch

    from mer.cli import compose
    from mer.data.build import build_clip_dataset, load_records
    from mer.data.motion import FlowCache
    from mer.engine.experiment import resolve_config
    from mer.losses.au import FrameAULoss
    from mer.models.net import build_model

    cfg = resolve_config(compose("train"))
    records = load_records(cfg.data)[:clips]
    with tempfile.TemporaryDirectory() as tmp:
        dataset = build_clip_dataset(records, cfg.data, cfg.clip_sampler, train=False)
        dataset.flow_cache = FlowCache(Path(tmp))
        cold = rates({"cold": lambda r: dataset[records.index(r)]}, records, repeats=1)["cold"]  # computes and stores
        warm = rates({"warm": lambda r: dataset[records.index(r)]}, records, repeats=repeats)["warm"]
        frames_cfg = compose("train", ["data.representation=diff"]).data
        plain = build_clip_dataset(records, frames_cfg, cfg.clip_sampler, train=False)
        decode = rates({"diff": lambda r: plain[records.index(r)]}, records, repeats=repeats)["diff"]
    print(
        f"{cfg.data.representation} input ({cfg.data.motion.method}, head motion {cfg.data.motion.head_motion}), "
        f"{cfg.clip_sampler.num_frames} frames of {cfg.data.crop_size} px, {clips} clips, torch {torch.__version__}"
    )
    print("| in this process | clips/s |")
    print("|---|---|")
    print(f"| decode + diff input (no flow) | {decode:.1f} |")
    print(f"| decode + flow, cache cold (computed) | {cold:.1f} |")
    print(f"| decode + flow, cache warm | {warm:.1f} |")
    print(f"| warm / cold | {warm / cold:.1f}x |")

    train_set = build_clip_dataset(records, cfg.data, cfg.clip_sampler, train=True)  # random frames: flows computed
    batch = int(cfg.trainer.batch_size)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=True
    )
    model = build_model(
        cfg.model, num_classes=7, num_aus=len(cfg.data.aus), num_frames=cfg.clip_sampler.num_frames, crop_size=cfg.data.crop_size
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    au_loss = FrameAULoss()
    batches = [b for _, b in zip(range(2), loader)]  # workers started, two batches kept for the step
    if len(batches) < 2:
        raise SystemExit(f"--clips {clips} makes fewer than two training batches of {batch}: give more clips")
    start, n = time.perf_counter(), 0
    for _ in range(repeats):
        for b in loader:
            n += len(b["clip"])
    loading = n / (time.perf_counter() - start)
    model.train()
    step_times = []
    for i in range(6):
        b = batches[i % 2]
        start = time.perf_counter()
        out = model(b["clip"])
        loss = torch.nn.functional.cross_entropy(out["emotion"], b["emotion"]) + au_loss(out["frame_aus"], b["frame_aus"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            step_times.append(time.perf_counter() - start)
    stepping = batch / float(np.median(step_times))
    print(f"\n| training, batch {batch} | clips/s |")
    print("|---|---|")
    print(f"| DataLoader, {workers} workers, random frames (flows computed) | {loading:.1f} |")
    print(f"| training step of the default model | {stepping:.1f} |")
    print(f"| loader / step | {loading / stepping:.1f}x |")


def jitter_cost(clips: int, epochs: int, num_frames: int, jitter: float) -> None:
    """Jittered keyframe draws: flows computed each time against flows kept pair by pair."""
    import random

    import torch

    from mer.cli import compose
    from mer.data.build import build_clip_dataset, load_records
    from mer.data.motion import FlowCache
    from mer.engine.experiment import resolve_config

    overrides = [f"clip_sampler.num_frames={num_frames}", f"clip_sampler.jitter={jitter}", "clip_sampler.rise_share=1.0"]
    cfg = resolve_config(compose("train", overrides))
    records = load_records(cfg.data)[:clips]
    with tempfile.TemporaryDirectory() as tmp:
        computed = build_clip_dataset(records, cfg.data, cfg.clip_sampler, train=True)
        computed.flow_cache = None
        paired = build_clip_dataset(records, cfg.data, cfg.clip_sampler, train=True)
        paired.flow_cache = FlowCache(Path(tmp))
        print(
            f"keyframe, {num_frames} frames on the rise, jitter {jitter}; {cfg.data.representation} input "
            f"({cfg.data.motion.method}); {clips} clips of the default synthetic set; torch {torch.__version__}"
        )
        print("| epoch | computed, clips/s | pair cache, clips/s | pair cache / computed | pairs kept |")
        print("|---|---|---|---|---|")
        totals = np.zeros(2)
        for epoch in range(epochs):
            seconds = np.zeros(2)
            for i in range(len(records)):
                for k, dataset in enumerate((computed, paired)):
                    random.seed(epoch * 100_003 + i)  # both draw the same frames
                    start = time.perf_counter()
                    dataset[i]
                    seconds[k] += time.perf_counter() - start
            totals += seconds
            kept = len(list(Path(tmp).glob("*.npy")))
            print(
                f"| {epoch + 1} | {clips / seconds[0]:.1f} | {clips / seconds[1]:.1f} | {seconds[0] / seconds[1]:.2f}x | {kept} |"
            )
        print(
            f"| all {epochs} | {clips * epochs / totals[0]:.1f} | {clips * epochs / totals[1]:.1f} | {totals[0] / totals[1]:.2f}x | |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=None, help="clips per kind (default 8; 48 with --input flow)")
    parser.add_argument("--num-frames", type=int, default=None, help="frames a clip (default 16; 8 with --input jitter)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--input",
        choices=["frames", "flow", "jitter"],
        default="frames",
        help="flow, jitter: the costs of the flow input (above)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8, help="--input jitter: epochs of draws")
    parser.add_argument("--jitter", type=float, default=0.25, help="--input jitter: clip_sampler.jitter")
    args = parser.parse_args()
    if args.input == "flow":
        flow_cost(args.clips or 48, args.workers, args.repeats)
        return
    if args.input == "jitter":
        jitter_cost(args.clips or 48, args.epochs, args.num_frames or 8, args.jitter)
        return
    args.clips = args.clips or 8
    args.num_frames = args.num_frames or 16
    sampler = build_sampler("keyframe", num_frames=args.num_frames, context_frames=2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (fps, n) in KINDS.items():
            records = [make_clip(Path(tmp) / f"{fps}_{i}.mp4", fps, n, args.size, i) for i in range(args.clips)]
            chosen = {r.clip_id: sampler(r, train=False) for r in records}
            for backend in available_backends():
                dataset = ClipDataset(records, sampler, backend=backend)
                by_id = {r.clip_id: i for i, r in enumerate(records)}

                def raw(r, backend=backend, chosen=chosen):
                    with open_video(r.path, backend, expected_frames=r.n_frames) as source:
                        source.get_frames(chosen[r.clip_id])

                measured = rates(
                    {
                        "dataset": lambda r, dataset=dataset, by_id=by_id: dataset[by_id[r.clip_id]],
                        "raw": raw,
                        "full": lambda r, b=backend, chosen=chosen: full_decode(r, b, chosen[r.clip_id]),
                    },
                    records,
                    repeats=args.repeats,
                )
                ds_rate, raw_rate, full_rate = measured["dataset"], measured["raw"], measured["full"]
                rows.append((kind, backend, ds_rate, raw_rate, full_rate))
    print(f"clips of {args.size}x{args.size}, keyframe sampler, {args.num_frames} frames, {args.clips} clips per cell")
    print(
        "| clips | backend | Dataset clips/s | raw get_frames clips/s | full decode clips/s | keyframe / full | Dataset overhead |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, backend, ds_rate, raw_rate, full_rate in rows:
        overhead = raw_rate / ds_rate - 1.0
        print(
            f"| {kind} | {backend} | {ds_rate:.1f} | {raw_rate:.1f} | {full_rate:.2f} | {ds_rate / full_rate:.1f}x | {overhead:+.0%} |"
        )


if __name__ == "__main__":
    main()
