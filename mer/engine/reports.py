"""Files a user opens after a run: metrics.json, predictions.csv, confusion_matrix.png, curves.png."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mer.data.aus import au_code  # noqa: E402
from mer.engine.metrics import PROBABILITY_DECIMALS, present_aus  # noqa: E402


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_json_safe(data), indent=2) + "\n")
    tmp.replace(path)  # never a half-written file
    return path


# Besides torch: the libraries that decode, resize and augment the frames a model sees.
RECORDED_LIBRARIES = ("torchvision", "pytorchvideo", "numpy", "av", "decord", "opencv-python-headless")


def environment(device) -> dict:
    """What a run's figures depend on beyond its config and data: the library versions, the
    device, the CPU and the SIMD level torch's CPU kernels dispatch to (AVX2, AVX512, ...): another
    torch build or CPU takes other kernels, which round differently, so the same seed trains along
    another path."""
    import torch

    versions = {}
    for name in RECORDED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu = platform.processor()
    try:  # Linux names the model here; platform.processor() is often empty there
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        **versions,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu or None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def named_metrics(metrics: dict, class_names: Sequence[str], au_names: Sequence[str]) -> dict:
    """Per-class and per-AU lists turned into name-keyed tables."""
    out = {k: metrics[k] for k in ("uf1", "uar", "accuracy") if k in metrics}
    for key in ("au_f1", "au_f1_tuned", "au_auc"):
        if key in metrics:
            out[key] = metrics[key]
    out["per_class"] = {
        name: {"f1": metrics["per_class_f1"][i], "recall": metrics["per_class_recall"][i], "support": metrics["support"][i]}
        for i, name in enumerate(class_names)
    }
    if metrics.get("per_au_f1"):
        out["per_au"] = {au_code(au): f1 for au, f1 in zip(au_names, metrics["per_au_f1"])}
    if metrics.get("per_au_f1_tuned"):
        out["per_au_tuned"] = {au_code(au): f1 for au, f1 in zip(au_names, metrics["per_au_f1_tuned"])}
    if metrics.get("per_au_auc"):
        out["per_au_auc"] = {au_code(au): auc for au, auc in zip(au_names, metrics["per_au_auc"])}
    if metrics.get("per_dataset"):
        out["per_dataset"] = metrics["per_dataset"]
    out["confusion"] = metrics["confusion"]
    return out


def au_f1_text(metrics: dict) -> str:
    """``0.2490 (0.3570 at the validation thresholds)`` for logs; ``n/a`` without an AU head."""
    if metrics.get("au_f1") is None:
        return "n/a"
    tuned = metrics.get("au_f1_tuned")
    return f"{metrics['au_f1']:.4f}" + (f" ({tuned:.4f} at the validation thresholds)" if tuned is not None else "")


def predictions_table(predictions, class_names: Sequence[str], au_names: Sequence[str]) -> pd.DataFrame:
    probs = np.asarray(predictions.probs)
    table = pd.DataFrame(
        {
            "clip": predictions.clip_ids,
            "subject": predictions.subjects,
            "true": [class_names[i] for i in predictions.true],
            "predicted": [class_names[i] for i in predictions.pred],
        }
    )
    if predictions.datasets:  # a composite's clips: each one's set
        table.insert(0, "dataset", predictions.datasets)
    for i, name in enumerate(class_names):
        table[f"p_{name}"] = probs[:, i].round(PROBABILITY_DECIMALS)
    if predictions.au_probs:
        au_probs = np.asarray(predictions.au_probs)
        table["aus"] = present_aus(au_probs, predictions.au_thresholds or None, au_names)
        for k, au in enumerate(au_names):
            table[f"p_{au_code(au)}"] = au_probs[:, k].round(PROBABILITY_DECIMALS)
    return table


def plot_confusion(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, title: str = "") -> Path:
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(class_names), 0.8 + 0.7 * len(class_names)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                f"{int(matrix[i, j])}\n{share[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion (counts, row share)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(histories: Sequence[Sequence[dict]], path: Path) -> Path:
    """Training loss and validation UF1/UAR per epoch, one line per fold."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for fold, history in enumerate(histories):
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        left.plot(epochs, [h["train_loss"] for h in history], label=f"fold {fold}")
        uf1, uar = (
            [np.nan if h[key] is None else h[key] for h in history] for key in ("val_uf1", "val_uar")
        )  # None: no validation
        right.plot(epochs, uf1, label=f"UF1 fold {fold}")
        right.plot(epochs, uar, linestyle="--", alpha=0.6, label=f"UAR fold {fold}")
    left.set_title("training loss")
    right.set_title("validation UF1 (solid) / UAR (dashed)")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if len(histories) <= 5:
        right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
