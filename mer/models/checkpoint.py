"""Checkpoints: plain dicts written atomically and read back safely, and the model they hold.

    loaded = load_model("outputs/train/<run>/best.pt")      # the model in eval mode and what it needs
    loaded.input        # {"num_frames": 16, "size": 112, "representation": "flow", "motion": {...}, ...}
    loaded.class_names, loaded.au_names, loaded.au_thresholds, loaded.config

A checkpoint is ``{"model": state_dict, "config": the run's resolved config, "class_names",
"au_names", "input", ...}`` (training adds optimizer, scheduler, epoch, history to ``last.pt`` and
the validation AU thresholds to ``best.pt``). It holds tensors and plain Python values only, so
``torch.load(..., weights_only=True)`` reads it and no code in a file is ever run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from mer.models.net import build_model


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file, then rename: a kill mid-write never leaves a broken checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint dict, loaded safely (tensors and plain Python types only): a file that is not
    one (truncated, corrupt, or holding code) is a one-line ValueError, never retried unsafely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types here, and advises weights_only=False: never
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not a readable mer checkpoint (truncated, corrupt or not a torch file: {reason[:120]})"
        ) from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a mer checkpoint (it holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


def _input(ckpt: dict, config: DictConfig) -> dict:
    """The checkpoint's input spec (``mer.data.clip.ClipSpec`` as a dict); for a checkpoint without
    one, the frames and side its config gave, and the representation its model computed itself
    (``model.input``: frames, or diff, which the data pipeline's diff reproduces)."""
    if ckpt.get("input"):
        return dict(ckpt["input"])
    return {
        "num_frames": int(config.clip_sampler.num_frames),
        "size": int(config.data.crop_size),
        "resize": config.data.get("resize"),
        "representation": config.model.get("input") or "frames",
    }


@dataclass
class LoadedModel:
    model: torch.nn.Module  # in eval mode, on the device asked for
    config: DictConfig  # the config it was trained with
    class_names: list[str]
    au_names: list[int]
    au_thresholds: list[float] | None  # per-AU decision thresholds chosen on validation; None: 0.5
    input: dict  # what the model takes and how frames become it: mer.data.clip.ClipSpec as a dict


def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    """The network a checkpoint dict describes, with its weights (in train mode, on the CPU)."""
    config = OmegaConf.create(ckpt["config"])
    spec = _input(ckpt, config)
    model = build_model(
        config.model,
        num_classes=len(ckpt["class_names"]),
        num_aus=len(ckpt["au_names"]),
        num_frames=spec["num_frames"],
        crop_size=spec["size"],
    )
    model.load_state_dict(ckpt["model"])
    return model


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """The model of a checkpoint file, with what it needs to be used (see :class:`LoadedModel`)."""
    ckpt = load_checkpoint(checkpoint)
    missing = [k for k in ("model", "config", "class_names", "au_names") if k not in ckpt]
    if missing:
        raise ValueError(
            f"{checkpoint}: not a mer checkpoint: it lacks {', '.join(missing)} (a plain state dict? give it to a new run as "
            "model.pretrained=... instead)"
        )
    config = OmegaConf.create(ckpt["config"])
    thresholds = ckpt.get("au_thresholds")
    return LoadedModel(
        model_from_checkpoint(ckpt).to(device).eval(),
        config,
        list(ckpt["class_names"]),
        [int(a) for a in ckpt["au_names"]],
        None if thresholds is None else [float(t) for t in thresholds],
        _input(ckpt, config),
    )
