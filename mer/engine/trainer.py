"""The training loop, readable top to bottom: ``train_one_epoch``, ``evaluate``, ``fit``.

In the spirit of torchvision's reference scripts: checkpoints are plain dicts (model, optimizer,
scheduler, epoch, config, class and AU names) loaded with ``weights_only=True``; resuming is
loading ``last.pt`` and carrying on. Every epoch reseeds from (seed, epoch), so a run killed after
epoch k and resumed ends exactly where an uninterrupted run ends (on CPU).

``trainer.batch_size`` is the global batch: under torchrun each of N processes takes 1/N of it,
and the training order comes from one DistributedSampler, so N processes see the same batches
as one.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from mer.engine import distributed as dist
from mer.engine.metrics import au_metrics, choose_au_thresholds, classification_metrics
from mer.losses import EmotionLoss
from mer.losses.au import FrameAULoss
from mer.losses.schedule import Schedule, ScheduleState

log = logging.getLogger(__name__)


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint dict, loaded safely (tensors and plain Python types only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file, then rename: a kill mid-write never leaves a broken checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


@dataclass
class Predictions:
    """Per-clip outputs of :func:`evaluate`, in dataset order."""

    clip_ids: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    true: list[int] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)  # (N, E) emotion probabilities
    au_true: list[list[float]] = field(default_factory=list)  # (N, K) clip AU targets
    au_probs: list[list[float]] = field(default_factory=list)  # (N, K) clip AU probabilities
    au_thresholds: list[list[float]] = field(default_factory=list)  # (N, K) the model's AU decision thresholds; empty: none chosen

    @property
    def pred(self) -> list[int]:
        return [int(np.argmax(p)) for p in self.probs]

    def metrics(self, num_classes: int) -> dict:
        """Classification metrics, and AU metrics at 0.5 (``au_f1``) and, when the model has
        thresholds chosen on validation, at those (``au_f1_tuned``, ``per_au_f1_tuned``)."""
        out = classification_metrics(self.true, self.pred, num_classes)
        if self.au_probs:
            au_true, au_probs = np.array(self.au_true), np.array(self.au_probs)
            out.update(au_metrics(au_true, au_probs))
            if self.au_thresholds:
                tuned = au_metrics(au_true, au_probs, np.array(self.au_thresholds))
                out.update(au_f1_tuned=tuned["au_f1"], per_au_f1_tuned=tuned["per_au_f1"])
        return out

    def choose_au_thresholds(self) -> list[float] | None:
        """Per-AU decision thresholds chosen on these (validation) predictions; None without AUs."""
        return choose_au_thresholds(self.au_true, self.au_probs).tolist() if self.au_probs else None

    def with_au_thresholds(self, thresholds) -> "Predictions":
        """The same predictions, decided at the model's per-AU ``thresholds`` (K,); None: at 0.5."""
        if thresholds is not None and self.au_probs:
            self.au_thresholds = [[float(t) for t in thresholds] for _ in self.au_probs]
        return self

    def extend(self, other: "Predictions") -> "Predictions":
        if bool(self.au_thresholds) != bool(other.au_thresholds) and self.au_probs and other.au_probs:
            self.au_thresholds = []  # not every part has thresholds: report at 0.5 only
            other = Predictions(**{**other.__dict__, "au_thresholds": []})
        for name in ("clip_ids", "subjects", "true", "probs", "au_true", "au_probs", "au_thresholds"):
            getattr(self, name).extend(getattr(other, name))
        return self


class ScheduledSampler(DistributedSampler):
    """DistributedSampler whose epoch can be partly class-balanced.

    With ``balance`` 0 it is the plain shuffled DistributedSampler. With ``balance`` b in (0, 1]
    the epoch's N indices are drawn with replacement, p_i proportional to (1 - b) / N + b / (E * n_{y_i}):
    b = 1 gives every class the same expected share. The draw depends on (seed, epoch) only, and
    every rank takes its slice of the same draw.
    """

    def __init__(self, dataset, labels, **kw) -> None:
        super().__init__(dataset, **kw)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.balance = 0.0

    def set_balance(self, balance: float) -> None:
        self.balance = float(balance)

    def __iter__(self):
        if self.balance <= 0 or not self.shuffle:
            return super().__iter__()
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        counts = torch.bincount(self.labels).float()
        present = int((counts > 0).sum())
        n = len(self.labels)
        p = (1.0 - self.balance) / n + self.balance / (present * counts[self.labels])
        indices = torch.multinomial(p, self.total_size, replacement=True, generator=g).tolist()
        return iter(indices[self.rank : self.total_size : self.num_replicas])


def make_loader(dataset, *, batch_size: int, train: bool, seed: int, num_workers: int, device: torch.device) -> DataLoader:
    """Training order from one (scheduled) DistributedSampler (world of 1 without torchrun), reseeded per epoch."""
    world, rank = dist.world_size(), dist.rank()
    per_rank = max(1, batch_size // world)
    kw = dict(num_replicas=world, rank=rank, shuffle=train, seed=seed, drop_last=False)
    labels = getattr(dataset, "labels", None)
    sampler = ScheduledSampler(dataset, labels, **kw) if train and labels is not None else DistributedSampler(dataset, **kw)
    return DataLoader(
        dataset, batch_size=per_rank, sampler=sampler, num_workers=num_workers,
        pin_memory=device.type == "cuda", drop_last=train and len(dataset) >= batch_size,
        persistent_workers=False, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip


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
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; valid choices: adamw, sgd")


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
        clip = batch["clip"].to(device, non_blocking=True)
        target = batch["emotion"].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            out = model(clip)
            loss_emotion = emotion_loss(out["emotion"], target)
            loss_au = au_loss(out["frame_aus"], batch["frame_aus"].to(device)) if "frame_aus" in out else torch.zeros((), device=device)
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


@torch.no_grad()
def update_bn_stats(model: nn.Module, loader: DataLoader, *, device: torch.device, max_batches: int) -> int:
    """Precise BN (as PySlowFast does for X3D): recompute BatchNorm running statistics as plain
    averages over ``max_batches`` training batches with the current weights.

    Running averages with momentum lag far behind weights that move fast (small data, few steps per
    epoch): evaluation then normalises with stale statistics and scores much worse than training.
    Returns the number of batches used (0 when the model has no BatchNorm).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or max_batches <= 0:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    used = 0
    for used, batch in enumerate(loader, start=1):
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            model(batch["clip"].to(device, non_blocking=True))
        if used >= max_batches:
            break
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
    return used


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, *, device: torch.device, progress: bool = False) -> Predictions:
    """Predictions for every clip of the loader's dataset (gathered across ranks, duplicates dropped)."""
    model.eval()
    local = Predictions()
    for batch in tqdm(loader, desc="eval", leave=False, disable=not (progress and dist.is_main())):
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
    order = [r.clip_id for r in getattr(loader.dataset, "records", [])] or list(rows)  # dataset order, whatever the ranks
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
    cfg,
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

    ``meta`` (config, class names, AU names) is stored in every checkpoint. ``on_epoch`` is called
    after each epoch's validation (the search reports to Optuna from it).
    """
    tc = cfg.trainer
    num_classes = len(meta["class_names"])
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    model.to(device)
    if dist.world_size() > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_loader = make_loader(train_set, batch_size=tc.batch_size, train=True, seed=seed, num_workers=tc.num_workers, device=device)
    val_loader = make_loader(val_set, batch_size=tc.eval_batch_size, train=False, seed=seed, num_workers=tc.num_workers, device=device)
    steps_per_epoch = len(train_loader) if tc.get("max_steps_per_epoch") is None else min(len(train_loader), tc.max_steps_per_epoch)
    optimizer = build_optimizer(model, tc)
    total = tc.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, int(tc.warmup_epochs * steps_per_epoch)))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and tc.get("amp", True))
    start_epoch, best_uf1, best_epoch, history, patience_used = 0, -1.0, -1, [], 0
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
            model, train_loader, optimizer, scheduler, emotion_loss, au_loss, state, device=device, epoch=epoch,
            scaler=scaler, grad_clip=tc.get("grad_clip"), max_steps=tc.get("max_steps_per_epoch"), progress=tc.get("progress", True),
        )  # fmt: skip
        update_bn_stats(model, train_loader, device=device, max_batches=tc.get("precise_bn_batches", 0))
        val_predictions = evaluate(model, val_loader, device=device)
        val = val_predictions.metrics(num_classes)
        record = {
            "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **{f"train_{k}": v for k, v in train_stats.items()},
            "val_uf1": val["uf1"], "val_uar": val["uar"], "val_accuracy": val["accuracy"], "val_au_f1": val.get("au_f1", float("nan")),
            "class_balance": state.class_balance, "au_weight": state.au_weight, "balanced_sampling": state.balanced_sampling,
        }  # fmt: skip
        history.append(record)
        improved = val["uf1"] > best_uf1
        if improved:
            best_uf1, best_epoch, patience_used = val["uf1"], epoch, 0
        else:
            patience_used += 1
        if dist.is_main():
            log.info(
                "epoch %d: loss %.4f  val UF1 %.4f  UAR %.4f  acc %.4f%s", epoch, train_stats["loss"], val["uf1"], val["uar"],
                val["accuracy"], "  (best)" if improved else "",
            )  # fmt: skip
            if writer is not None:
                for key, value in record.items():
                    if key != "epoch" and isinstance(value, (int, float)):
                        writer.add_scalar(_tag(key), value, epoch)
                writer.flush()
            weights = unwrap(model).state_dict()
            if improved:  # the AU decision thresholds are chosen on the same validation clips as the epoch
                thresholds = val_predictions.choose_au_thresholds()
                save_checkpoint({"model": weights, "epoch": epoch, "val": _plain_metrics(val), "au_thresholds": thresholds, **meta}, best_path)
            save_checkpoint(
                {
                    "model": weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(), "epoch": epoch, "best_uf1": best_uf1, "best_epoch": best_epoch,
                    "history": history, "patience_used": patience_used, **meta,
                },
                last_path,
            )  # fmt: skip
        dist.barrier()
        if on_epoch is not None:
            on_epoch(epoch, record)
    best_val = next((h for h in history if h["epoch"] == best_epoch), {})
    return FitResult(best_epoch=best_epoch, best_val=best_val, history=history, best_path=best_path if best_path.exists() else None)


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
