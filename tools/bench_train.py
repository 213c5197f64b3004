"""Training throughput per backbone: clips/s of a full MERNet training step.

    python tools/bench_train.py [--backbones x3d_tiny,frame_cnn,...] [--steps 5] [--batch 8] [--frames T] [--size S]

For each backbone: forward, AU + emotion losses, backward, AdamW, on random clips of
batch x 3 x frames x size x size (default: the default config's frames and size); clips/s = batch /
median step time, and each backbone's time relative to the default model's, measured in one run.
The loader against the default model's step: python tools/bench_loader.py --input flow.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mer.cli import compose
from mer.losses.au import FrameAULoss
from mer.models.backbones import build_backbone, list_backbones
from mer.models.net import MERNet, build_model, count_parameters


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", default=",".join(list_backbones()))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    cfg = compose("train")
    parser.add_argument("--frames", type=int, default=int(cfg.clip_sampler.num_frames))
    parser.add_argument("--size", type=int, default=int(cfg.data.crop_size))
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x 3 x {args.frames} x {args.size} x {args.size}"
    )
    default = str(cfg.model.backbone)
    names = [default] + [n for n in args.backbones.split(",") if n != default]
    print(f"| backbone | parameters | s / step | clips / s | time / {default}'s |")
    print("|---|---|---|---|---|")
    reference = None
    for name in names:
        try:
            backbone = build_backbone(name, num_frames=args.frames, crop_size=args.size)
        except (ValueError, AssertionError) as exc:  # a backbone that cannot take this clip size
            print(f"| {name} | - | - | - | ({' '.join(str(exc).split())[:60]}) |")
            continue
        model = (
            build_model(cfg.model, num_classes=7, num_aus=16, num_frames=args.frames, crop_size=args.size)
            if name == default
            else None
        )
        model = model or MERNet(backbone, num_classes=7, num_aus=16)  # the default model's heads
        seconds = step_seconds(model, args.batch, args.frames, args.size, args.steps)
        reference = reference or seconds
        print(
            f"| {name} | {count_parameters(model) / 1e6:.2f}M | {seconds:.3f} | {args.batch / seconds:.1f} | {seconds / reference:.1f}x |"
        )


if __name__ == "__main__":
    main()
