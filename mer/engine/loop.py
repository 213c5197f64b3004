"""The training loop, readable top to bottom: ``train_one_epoch``, ``predict``, ``fit``.

In the spirit of torchvision's reference scripts: checkpoints are plain dicts (model, optimizer,
scheduler, epoch, config, class and AU names, input shape) loaded with ``weights_only=True``;
resuming is loading ``last.pt`` and carrying on. Every epoch reseeds from (seed, epoch), so a run
killed after epoch k and resumed ends exactly where an uninterrupted run ends (on CPU).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mer import distributed as dist
from mer.engine.loader import ScheduledSampler, make_loader
from mer.engine.predictions import Predictions
from mer.losses import EmotionLoss
from mer.losses.au import FrameAULoss
from mer.losses.schedule import Schedule, ScheduleState
from mer.models.checkpoint import load_checkpoint, save_checkpoint
from mer.runtime import seed_everything

log = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "sgd")


@dataclass
class TrainerConfig:
    """The ``trainer`` config group's settings: their one declaration (registered with Hydra, so a
    wrong type is refused when the command line is read) and their ranges (:meth:`check`)."""

    epochs: int = 30
    batch_size: int = 8  # global batch; under torchrun each process takes batch_size / world_size
    eval_batch_size: int = 16
    num_workers: int = 2  # DataLoader processes
    threads: int | None = None  # torch intra-op threads of this process; None: one per core; 1 for parallel runs
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 0.002
    weight_decay: float = 0.05
    momentum: float = 0.9  # sgd only
    warmup_epochs: float = 2.0  # linear warm-up, then cosine decay to 0
    grad_clip: float | None = 5.0  # max gradient norm; None: no clipping
    early_stopping: int = 10  # epochs without a better validation UF1; 0 = off
    amp: bool = True  # mixed precision, used only on CUDA
    max_steps_per_epoch: int | None = None
    progress: bool = True
    precise_bn_batches: int = 20  # recompute BatchNorm statistics over this many training batches before each validation; 0 = off

    def check(self) -> TrainerConfig:
        """A one-line ValueError naming the first setting out of its range."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"trainer.{name} must be > 0, got {value}")
        non_negative = {
            "lr": self.lr,  # 0 is allowed, as in torch.optim: the weights stay put
            "num_workers": self.num_workers,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
            "early_stopping": self.early_stopping,
            "precise_bn_batches": self.precise_bn_batches,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"trainer.{name} must be >= 0, got {value}")
        for name in ("threads", "max_steps_per_epoch"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"trainer.{name} must be >= 1 or null, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown trainer.optimizer {self.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")
        return self


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor: linear warmup, then cosine decay to 0 (per optimizer step)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.get("momentum", 0.9), nesterov=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    emotion_loss: EmotionLoss,
    au_loss: FrameAULoss,
    state: ScheduleState,
    *,
    device: torch.device,
    epoch: int,
    scaler: torch.amp.GradScaler,
    grad_clip: float | None,
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    model.train()
    totals = {"loss": 0.0, "loss_emotion": 0.0, "loss_au": 0.0}
    steps = 0
    amp = device.type == "cuda" and scaler.is_enabled()
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not (progress and dist.is_main()), dynamic_ncols=True)
    for step, batch in enumerate(bar):
        if max_steps is not None and step >= max_steps:
            break
        if batch is None:  # every clip of the batch failed to load (each named in a warning)
            continue
        clip = batch["clip"].to(device, non_blocking=True)
        target = batch["emotion"].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            out = model(clip)
            loss_emotion = emotion_loss(out["emotion"], target)
            loss_au = (
                au_loss(out["frame_aus"], batch["frame_aus"].to(device)) if "frame_aus" in out else torch.zeros((), device=device)
            )
            loss = loss_emotion + state.au_weight * loss_au
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at epoch {epoch}, step {step} (emotion {loss_emotion.item()}, AU {loss_au.item()}); "
                "lower trainer.lr or check the data"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        steps += 1
        for name, value in (("loss", loss), ("loss_emotion", loss_emotion), ("loss_au", loss_au)):
            totals[name] += float(value.detach())
        bar.set_postfix(loss=f"{totals['loss'] / steps:.3f}")
    return {k: v / max(steps, 1) for k, v in totals.items()} | {"steps": steps}


def precise_bn(model: nn.Module, loader: DataLoader, *, device: torch.device, max_batches: int) -> None:
    """Precise BN (as PySlowFast does for X3D): BatchNorm running statistics recomputed as plain
    averages over ``max_batches`` training batches with the current weights.

    Running averages with momentum lag far behind weights that move fast (small data, few steps per
    epoch): evaluation then normalises with stale statistics and scores much worse than training.
    """
    if max_batches <= 0:
        return
    clips = (batch["clip"] for batch in itertools.islice(loader, max_batches) if batch is not None)
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        update_bn(clips, model, device=device)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, *, device: torch.device, progress: bool = False) -> Predictions:
    """Predictions for every clip of the loader's dataset (gathered across ranks, duplicates dropped)."""
    model.eval()
    local = Predictions()
    for batch in tqdm(loader, desc="eval", leave=False, disable=not (progress and dist.is_main())):
        if batch is None:
            continue
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            out = model(batch["clip"].to(device, non_blocking=True))
        local.clip_ids += list(batch["clip_id"])
        local.subjects += list(batch["subject"])
        local.true += batch["emotion"].tolist()
        local.probs += torch.softmax(out["emotion"].float(), dim=1).cpu().tolist()
        if "clip_aus" in out:
            local.au_true += batch["clip_aus"].tolist()
            local.au_probs += torch.sigmoid(out["clip_aus"].float()).cpu().tolist()
    rows: dict[str, tuple] = {}
    for part in dist.gather(local):  # DistributedSampler pads with repeats; keep each clip once
        for i, clip_id in enumerate(part.clip_ids):
            au = (part.au_true[i], part.au_probs[i]) if part.au_probs else None
            rows.setdefault(clip_id, (part.subjects[i], part.true[i], part.probs[i], au))
    records = getattr(loader.dataset, "records", [])
    order = [r.clip_id for r in records] or list(rows)  # dataset order, whatever the ranks
    lost = [clip_id for clip_id in order if clip_id not in rows]
    if lost:  # clips that failed to load (each named in a warning): predicted on the rest
        log.warning("%d of %d clips could not be loaded and have no prediction: %s", len(lost), len(order), ", ".join(lost[:5]))
        order = [clip_id for clip_id in order if clip_id in rows]
    merged = Predictions()
    for clip_id in order:
        subject, true, probs, au = rows[clip_id]
        merged.clip_ids.append(clip_id)
        merged.subjects.append(subject)
        merged.true.append(true)
        merged.probs.append(probs)
        if au is not None:
            merged.au_true.append(au[0])
            merged.au_probs.append(au[1])
    sets = {r.clip_id: r.dataset for r in records if r.dataset}
    if sets:  # the clips of a composite: each one's set
        merged.datasets = [sets[clip_id] for clip_id in merged.clip_ids]
    return merged


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict
    history: list[dict]
    best_path: Path | None


EpochCallback = Callable[[int, dict], None]  # (epoch, record of the epoch) -> None; may raise to stop


def fit(
    model: nn.Module,
    train_set,
    val_set,
    *,
    trainer,
    run_dir: Path,
    emotion_loss: EmotionLoss,
    au_loss: FrameAULoss,
    schedule: Schedule,
    class_balanced_weight: torch.Tensor,
    meta: dict,
    device: torch.device,
    seed: int,
    resume: bool = False,
    writer=None,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train with validation-based model selection; ``last.pt`` every epoch, ``best.pt`` by val UF1.

    With no validation clips (``cv.val_fraction=0``) nothing selects: all ``trainer.epochs`` run
    (no early stopping), ``best.pt`` is the last epoch and the validation figures are None; the
    fixed-epoch protocol, its epoch count chosen before the run, not on the test subjects.
    ``meta`` (config, class names, AU names) is stored in every checkpoint. ``on_epoch`` is called
    after each epoch's validation (the search reports to Optuna from it).
    """
    tc = trainer
    num_classes = len(meta["class_names"])
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    model.to(device)
    if dist.world_size() > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_loader = make_loader(
        train_set, batch_size=tc.batch_size, train=True, seed=seed, num_workers=tc.num_workers, device=device
    )
    val_loader = make_loader(
        val_set, batch_size=tc.eval_batch_size, train=False, seed=seed, num_workers=tc.num_workers, device=device
    )
    steps_per_epoch = (
        len(train_loader) if tc.get("max_steps_per_epoch") is None else min(len(train_loader), tc.max_steps_per_epoch)
    )
    optimizer = build_optimizer(model, tc)
    total = tc.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, int(tc.warmup_epochs * steps_per_epoch)))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and tc.get("amp", True))
    start_epoch, best_uf1, best_epoch, history, patience_used = 0, -1.0, -1, [], 0
    validating = len(val_set) > 0
    if not validating and dist.is_main():
        log.info("no validation clips: %d epochs, the last one is kept (no model selection, no early stopping)", tc.epochs)
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path, map_location=device)
        unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best_uf1, best_epoch = ckpt["epoch"] + 1, ckpt["best_uf1"], ckpt["best_epoch"]
        history, patience_used = list(ckpt["history"]), ckpt["patience_used"]
        log.info("resumed %s at epoch %d (best val UF1 %.4f at epoch %d)", last_path, start_epoch, best_uf1, best_epoch)
    for epoch in range(start_epoch, tc.epochs):
        if tc.early_stopping and patience_used >= tc.early_stopping:
            break
        seed_everything(seed * 1000 + epoch)  # the epoch's randomness depends on (seed, epoch) only
        train_loader.sampler.set_epoch(epoch)
        train_loader.generator.manual_seed(seed * 1000 + epoch)
        state = schedule(epoch, tc.epochs)
        emotion_loss.set_class_weight(_mix_weights(class_balanced_weight, state.class_balance))
        if isinstance(train_loader.sampler, ScheduledSampler):
            train_loader.sampler.set_balance(state.balanced_sampling)
        train_stats = train_one_epoch(
            model,
            train_loader,
            optimizer,
            scheduler,
            emotion_loss,
            au_loss,
            state,
            device=device,
            epoch=epoch,
            scaler=scaler,
            grad_clip=tc.get("grad_clip"),
            max_steps=tc.get("max_steps_per_epoch"),
            progress=tc.get("progress", True),
        )
        precise_bn(model, train_loader, device=device, max_batches=tc.get("precise_bn_batches", 0))
        if validating:
            val_predictions = predict(model, val_loader, device=device)
            val = val_predictions.metrics(num_classes)
        else:
            val_predictions, val = None, {"uf1": None, "uar": None, "accuracy": None, "au_f1": None}
        record = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            **{f"train_{k}": v for k, v in train_stats.items()},
            "val_uf1": val["uf1"],
            "val_uar": val["uar"],
            "val_accuracy": val["accuracy"],
            "val_au_f1": val.get("au_f1", float("nan")),
            "class_balance": state.class_balance,
            "au_weight": state.au_weight,
            "balanced_sampling": state.balanced_sampling,
        }
        history.append(record)
        improved = not validating or val["uf1"] > best_uf1  # without validation every epoch replaces the last
        if improved:
            best_uf1, best_epoch, patience_used = val["uf1"] if validating else -1.0, epoch, 0
        else:
            patience_used += 1
        if dist.is_main():
            if validating:
                log.info(
                    "epoch %d: loss %.4f  val UF1 %.4f  UAR %.4f  acc %.4f%s",
                    epoch,
                    train_stats["loss"],
                    val["uf1"],
                    val["uar"],
                    val["accuracy"],
                    "  (best)" if improved else "",
                )
            else:
                log.info("epoch %d: loss %.4f", epoch, train_stats["loss"])
            if writer is not None:
                for key, value in record.items():
                    if key != "epoch" and isinstance(value, (int, float)):
                        writer.add_scalar(_tag(key), value, epoch)
                writer.flush()
            weights = unwrap(model).state_dict()
            if improved:  # the AU decision thresholds are chosen on the same validation clips as the epoch
                thresholds = None if val_predictions is None else val_predictions.choose_au_thresholds()
                save_checkpoint(
                    {"model": weights, "epoch": epoch, "val": _plain_metrics(val), "au_thresholds": thresholds, **meta}, best_path
                )
            save_checkpoint(
                {
                    "model": weights,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "best_uf1": best_uf1,
                    "best_epoch": best_epoch,
                    "history": history,
                    "patience_used": patience_used,
                    **meta,
                },
                last_path,
            )
        dist.barrier()
        if on_epoch is not None:
            on_epoch(epoch, record)
    best_val = next((h for h in history if h["epoch"] == best_epoch), {})
    return FitResult(
        best_epoch=best_epoch, best_val=best_val, history=history, best_path=best_path if best_path.exists() else None
    )


def _tag(key: str) -> str:
    """TensorBoard tag of an epoch record key: train/loss, val/uf1, schedule/class_balance, lr."""
    if key in ("class_balance", "au_weight", "balanced_sampling"):
        return f"schedule/{key}"
    if key.startswith(("train_", "val_")):
        return key.replace("_", "/", 1)
    return key


def _mix_weights(class_balanced: torch.Tensor, alpha: float) -> torch.Tensor | None:
    """(1 - alpha) * uniform + alpha * class-balanced; None when alpha is 0 (plain instance-balanced)."""
    if alpha <= 0:
        return None
    return (1.0 - alpha) * torch.ones_like(class_balanced) + alpha * class_balanced


def _plain_metrics(metrics: dict) -> dict:
    """Metrics with only JSON/pickle-safe plain types (for weights_only checkpoints)."""
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in metrics.items()}
