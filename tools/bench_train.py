"""Training throughput: clips/s per backbone, and the loader against the training step.

    python tools/bench_train.py [--backbones x3d_tiny,r3d_18,...] [--steps 5] [--batch 8] [--frames 16] [--size 112]

1. For each backbone: a full MERNet training step (forward, AU + emotion losses, backward, AdamW)
   on random clips of batch x 3 x frames x size x size; clips/s = batch / median step time.
2. For x3d_tiny on the default synthetic set: the DataLoader alone (keyframe sampler, training
   transforms, 2 workers) against the training step alone, and the two together as training runs.
   Goal: loader >= 2x the step rate, so the model never waits for data.
All figures come from one run; the ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mer.cli import compose
from mer.data.build import build_clip_dataset, load_records
from mer.losses.au import FrameAULoss
from mer.models.backbones import build_backbone, list_backbones
from mer.models.net import MERNet, count_parameters


def step_seconds(model: MERNet, batch: int, frames: int, size: int, steps: int) -> float:
    """Median seconds of one training step on random data (after one warm-up step)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    au_loss = FrameAULoss()
    clip = torch.randn(batch, 3, frames, size, size)
    target = torch.randint(0, 7, (batch,))
    frame_aus = torch.rand(batch, frames, 16)
    model.train()
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        out = model(clip)
        loss = torch.nn.functional.cross_entropy(out["emotion"], target) + au_loss(out["frame_aus"], frame_aus)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def loader_rate(batch: int, workers: int, batches: int) -> float:
    """Clips/s of the training DataLoader on the default synthetic set (no model)."""
    cfg = compose("train")  # the default data, sampler and input representation
    records = load_records(cfg.data)
    dataset = build_clip_dataset(records, cfg.data, cfg.clip_sampler, train=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)  # workers started
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += next(it)["clip"].shape[0]
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", default=",".join(list_backbones()))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x 3 x {args.frames} x {args.size} x {args.size}"
    )
    print("| backbone | parameters | s / step | clips / s |")
    print("|---|---|---|---|")
    tiny_step = None
    for name in args.backbones.split(","):
        backbone = build_backbone(name, num_frames=args.frames, crop_size=args.size)
        model = MERNet(backbone, num_classes=7, num_aus=16)  # the heads as the default model has them
        seconds = step_seconds(model, args.batch, args.frames, args.size, args.steps)
        if name == "x3d_tiny":
            tiny_step = args.batch / seconds
        print(f"| {name} | {count_parameters(model) / 1e6:.2f}M | {seconds:.3f} | {args.batch / seconds:.1f} |", flush=True)
    if tiny_step is None:
        return
    loader = loader_rate(args.batch, args.workers, batches=30)
    print(
        f"\nx3d_tiny: loader ({args.workers} workers, keyframe, train transforms) {loader:.1f} clips/s; "
        f"training step {tiny_step:.1f} clips/s; loader / step = {loader / tiny_step:.1f}x"
    )


if __name__ == "__main__":
    main()
