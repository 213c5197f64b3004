"""Pictures of the synthetic data: per emotion, onset / apex / offset and the amplified apex-onset
difference (docs/img/synthetic_grid.png); per AU, its displacement field (docs/img/synthetic_aus.png).

    python tools/show_synthetic.py                         # -> docs/img/synthetic_grid.png, synthetic_aus.png
    python tools/show_synthetic.py --subjects 0 5 9 --gain 12 --out /tmp/grid.png
    python tools/show_synthetic.py au_keep=0.7 extra_au=0.15   # as the data set samples them

Rows are the 7 DFME classes, column groups the subjects. By default each clip shows its emotion's
full prototype (au_keep=1, extra_au=0) with the default nuisances (drift, blinks, flicker, noise),
so the difference image shows the AU regions; the data set keeps a random part of the prototype.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from mer.data.labels import dfme7  # noqa: E402
from mer.data.synthetic import (
    SUPPORTED_AUS,
    ClipTask,
    Event,
    Nuisance,
    SyntheticSettings,
    displacement_field,
    render_clip,
    render_video,
    subject_layers,
)  # noqa: E402


def difference(apex: np.ndarray, onset: np.ndarray, gain: float) -> np.ndarray:
    """Signed grey difference, amplified: mid-grey = no change, light = brighter at the apex."""
    d = apex.astype(np.float32).mean(-1) - onset.astype(np.float32).mean(-1)
    return np.clip(128 + gain * d, 0, 255).astype(np.uint8)


def save_small(fig, out: Path, dpi: int) -> None:
    """Save as a 256-colour PNG: the noisy difference images make full-colour PNGs several MB."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    plt.close(fig)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def au_gallery(out: Path, *, subject: int = 3, size: int = 160, amplitude: float = 3.0) -> None:
    """Each AU at its apex with its displacement field as arrows (x4), on one subject."""
    layers = subject_layers(0, subject, size)
    aus = [str(a) for a in SUPPORTED_AUS] + ["L12", "R14"]
    ys, xs = np.mgrid[0:size:5, 0:size:5]
    fig, axes = plt.subplots(3, 6, figsize=(12, 6.6))
    for ax, au in zip(axes.ravel(), aus):
        frames = render_video(
            layers, [Event(1, 4, 8, au)], 5, 200, amplitude=amplitude, nuisance=Nuisance.none(), rng=np.random.default_rng(0)
        )
        field = displacement_field(layers, au, amplitude=amplitude * size / 112)
        u, v = field[ys, xs, 0], field[ys, xs, 1]
        keep = np.hypot(u, v) > 0.15
        ax.imshow(frames[4])
        ax.quiver(xs[keep], ys[keep], u[keep], v[keep], color="yellow", angles="xy", scale_units="xy", scale=0.25, width=0.006)
        ax.set_title(f"AU {au}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlim(size * 0.12, size * 0.88), ax.set_ylim(size * 0.92, size * 0.08)
    fig.suptitle(
        f"action units at the apex, displacement x4 (amplitude {amplitude:g} px at 112 px; L = subject's left = image right)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    save_small(fig, out, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="*", help="generator settings key=value")
    parser.add_argument("--subjects", type=int, nargs="+", default=[0, 3, 6])
    parser.add_argument("--gain", type=float, default=10.0, help="amplification of the difference image")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img" / "synthetic_grid.png")
    parser.add_argument(
        "--aus-out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img" / "synthetic_aus.png"
    )
    args = parser.parse_args()

    base = replace(SyntheticSettings(), au_keep=1.0, extra_au=0.0)
    overrides = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(base), OmegaConf.from_dotlist(args.settings)))
    settings = replace(base, **overrides).check()
    classes = dfme7().classes
    cols = ("onset", "apex", "offset", "apex - onset")
    fig, axes = plt.subplots(len(classes), 4 * len(args.subjects), figsize=(1.25 * 4 * len(args.subjects), 1.45 * len(classes)))
    for row, emotion in enumerate(classes):
        for k, subject in enumerate(args.subjects):
            # clip numbers past the data set's own, so the picture does not depend on clips_per_subject
            frames, ann = render_clip(ClipTask(subject, 1000 + row, emotion, settings))
            onset, apex, offset = frames[ann["onset"]], frames[ann["apex"]], frames[ann["offset"]]
            tiles = (onset, apex, offset, difference(apex, onset, args.gain))
            for j, tile in enumerate(tiles):
                ax = axes[row, 4 * k + j]
                ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None, vmin=0, vmax=255)
                ax.set_xticks([]), ax.set_yticks([])
                if row == 0:
                    ax.set_title(f"sub{subject + 1:02d} {cols[j]}" if j == 0 else cols[j], fontsize=7)
                if j == 3:
                    ax.set_xlabel(f"AU {ann['aus']}", fontsize=7)
                if j == 1:
                    ax.set_xlabel(f"{(ann['apex'] - ann['onset']) * 1000 / settings.fps:.0f} ms to apex", fontsize=6)
            if k == 0:
                axes[row, 0].set_ylabel(emotion, fontsize=8)
    fig.suptitle(
        f"synthetic DFME-style clips ({settings.size} px, {settings.fps:g} fps, amplitude {settings.amplitude:g} px; difference x{args.gain:g})",
        fontsize=9,
    )
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.1, rect=(0, 0, 1, 0.97))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_small(fig, args.out, dpi=110)
    au_gallery(args.aus_out, amplitude=settings.amplitude)
    print(args.out, args.aus_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
