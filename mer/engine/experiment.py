"""A training run: every fold of a protocol trained, selected on validation subjects, tested on
held-out ones, and the run folder written. ``mer.train`` runs it from the command line; a search
trial (``mer.tune``) runs it with its own fold and ``evaluate_test=false``.

Subject-independent always: each fold trains on some subjects, selects its best epoch on
validation subjects carved from them, and is tested on subjects it never saw. UF1/UAR are
computed once over the test predictions pooled across folds (MEGC style), and for a composite
of data sets also over each set's share of them (``per_dataset``); per-fold figures sit beside
them in metrics.json. The run folder holds config.yaml, metrics.json, predictions.csv,
confusion_matrix.png, curves.png, tensorboard/, fold*/{last,best}.pt and best.pt.
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from mer import distributed as dist
from mer.data.build import build_clip_dataset, build_folds, class_names, data_provenance, load_records
from mer.data.clip import ClipSpec
from mer.data.dataset import au_vector
from mer.data.splits import Fold
from mer.engine.loader import make_loader
from mer.engine.loop import TrainerConfig, fit, predict
from mer.engine.metrics import au_metrics
from mer.engine.predictions import Predictions
from mer.engine.reports import au_f1_text, environment, named_metrics, plot_confusion, plot_curves, predictions_table, write_json
from mer.losses import LOSSES, build_emotion_loss, class_balanced_weights
from mer.losses.au import FrameAULoss, smooth_pos_weights
from mer.losses.schedule import build_schedule
from mer.models.checkpoint import load_checkpoint
from mer.models.net import build_model, count_parameters
from mer.runtime import seed_everything, select_device

log = logging.getLogger("mer.train")

FoldEpochCallback = Callable[[int, int, dict], None]  # (fold, epoch, epoch record)


def plain_config(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def resolve_config(cfg: DictConfig) -> DictConfig:
    """Settle what one choice implies for another, before the config is saved with the run.

    A loss on a cosine classifier (LDAM, CRI) makes the model's classifier cosine with the loss's scale.
    """
    loss_cls = LOSSES.get(cfg.loss.name)
    if loss_cls.needs_cosine_classifier:
        default_scale = inspect.signature(loss_cls).parameters["s"].default
        with open_dict(cfg):
            cfg.model.classifier = "cosine"
            cfg.model.cosine_scale = float((cfg.loss.get("options") or {}).get("s", default_scale))
    return cfg


def build_losses(cfg: DictConfig, train_records, num_classes: int, au_list):
    """Emotion loss, AU loss, schedule and class-balanced weights, from the training split only."""
    counts = np.bincount([r.label for r in train_records], minlength=num_classes)
    emotion_loss = build_emotion_loss(cfg.loss.name, class_counts=counts.tolist(), **(cfg.loss.get("options") or {}))
    pos_weight = None
    if cfg.loss.get("au_pos_weight", "none") == "smooth":
        pos_weight = smooth_pos_weights(np.stack([au_vector(r, au_list) for r in train_records]))
    elif cfg.loss.get("au_pos_weight", "none") != "none":
        raise ValueError(f"unknown loss.au_pos_weight {cfg.loss.au_pos_weight!r}; valid choices: none, smooth")
    schedule = build_schedule(
        cfg.schedule.name, au_weight=cfg.loss.au_weight, **{k: v for k, v in cfg.schedule.items() if k != "name"}
    )
    return emotion_loss, FrameAULoss(pos_weight), schedule, class_balanced_weights(counts, cfg.loss.get("beta", 0.9999))


def run_fold(cfg: DictConfig, records, fold: Fold, fold_dir: Path, *, device, meta: dict, resume: bool, on_epoch=None):
    """Train one fold; returns (test Predictions or None, fold summary, history)."""
    done = fold_dir / "result.json"
    if resume and done.exists():
        saved = json.loads(done.read_text())
        log.info("fold %d already finished, reusing %s", fold.index, done)
        return Predictions(**saved["predictions"]) if saved.get("predictions") else None, saved["summary"], saved["history"]
    num_classes, au_list = len(meta["class_names"]), meta["au_names"]
    pick = lambda positions: [records[i] for i in positions]  # noqa: E731
    train_records, val_records = pick(fold.train), pick(fold.val)
    train_set = build_clip_dataset(train_records, cfg.data, cfg.clip_sampler, train=True)
    val_set = build_clip_dataset(val_records, cfg.data, cfg.clip_sampler, train=False)
    seed = cfg.seed + fold.index
    seed_everything(seed)
    model = build_model(
        cfg.model,
        num_classes=num_classes,
        num_aus=len(au_list),
        num_frames=cfg.clip_sampler.num_frames,
        crop_size=cfg.data.crop_size,
    )
    emotion_loss, au_loss, schedule, cb_weight = build_losses(cfg, train_records, num_classes, au_list)
    emotion_loss.to(device)
    au_loss.to(device)
    writer = None
    if dist.is_main():
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(fold_dir.parent / "tensorboard" / fold_dir.name))
        log.info(
            "fold %d: %d train / %d val / %d test clips, %s with %.2fM parameters on %s",
            fold.index,
            len(fold.train),
            len(fold.val),
            len(fold.test),
            cfg.model.backbone,
            count_parameters(model) / 1e6,
            device,
        )
    callback = None if on_epoch is None else (lambda epoch, record: on_epoch(fold.index, epoch, record))
    try:  # a pruned or failed search trial leaves here by an exception: its writer must close too
        result = fit(
            model,
            train_set,
            val_set,
            trainer=cfg.trainer,
            run_dir=fold_dir,
            emotion_loss=emotion_loss,
            au_loss=au_loss,
            schedule=schedule,
            class_balanced_weight=cb_weight,
            meta=meta,
            device=device,
            seed=seed,
            resume=resume,
            writer=writer,
            on_epoch=callback,
        )
    finally:
        if writer is not None:
            writer.close()
    summary = {
        "fold": fold.index,
        "best_epoch": result.best_epoch,
        "val_uf1": result.best_val.get("val_uf1"),
        "val_uar": result.best_val.get("val_uar"),
        "epochs_run": len(result.history),
    }
    predictions = None
    if cfg.evaluate_test and fold.test:
        best = load_checkpoint(fold_dir / "best.pt", map_location=device)
        model.load_state_dict(best["model"])
        test_set = build_clip_dataset(pick(fold.test), cfg.data, cfg.clip_sampler, train=False)
        loader = make_loader(
            test_set,
            batch_size=cfg.trainer.eval_batch_size,
            train=False,
            seed=seed,
            num_workers=cfg.trainer.num_workers,
            device=device,
        )
        model.to(device)
        thresholds = best.get("au_thresholds")
        if (
            thresholds is None and cfg.model.get("au_head") is not False
        ):  # a best.pt without thresholds: chosen now, on validation
            thresholds = validation_au_thresholds(model, val_set, cfg.trainer, device=device, seed=seed)
        predictions = predict(model, loader, device=device).with_au_thresholds(thresholds)
        test = predictions.metrics(num_classes)
        summary.update(
            {f"test_{k}": test[k] for k in ("uf1", "uar", "accuracy")}
            | {"test_au_f1": test.get("au_f1"), "test_au_f1_tuned": test.get("au_f1_tuned"), "au_thresholds": thresholds}
        )
    if dist.is_main():
        write_json(
            done,
            {"summary": summary, "history": result.history, "predictions": None if predictions is None else predictions.__dict__},
        )
    dist.barrier()
    return predictions, summary, result.history


def validation_au_thresholds(model, val_set, trainer_cfg, *, device, seed: int = 0) -> list[float] | None:
    """Per-AU decision thresholds chosen with ``model`` (its weights as they are) on the validation
    clips, as training chooses them at the best epoch; None for a model without AUs."""
    loader = make_loader(
        val_set,
        batch_size=trainer_cfg.eval_batch_size,
        train=False,
        seed=seed,
        num_workers=trainer_cfg.num_workers,
        device=device,
    )
    return predict(model, loader, device=device).choose_au_thresholds()


def fold_au_thresholds(run_dir: Path, fold_dir: Path, saved: dict, cache: dict | None = None) -> np.ndarray | None:
    """A finished fold's per-AU decision thresholds (``saved``: its result.json): those training
    recorded, or, for a run from before they were recorded, chosen now with the fold's best.pt on
    its validation clips (the run's own folds, from its config.yaml). ``cache`` keeps the run's
    records and folds between its folds. None for a model without AUs."""
    summary = saved["summary"]
    if summary.get("au_thresholds") is not None:
        return np.asarray(summary["au_thresholds"], dtype=float)
    from mer.models.checkpoint import load_model

    cache = {} if cache is None else cache
    cfg = OmegaConf.load(run_dir / "config.yaml")
    if "records" not in cache:
        cache["records"] = load_records(cfg.data)
        cache["folds"] = build_folds(cache["records"], cfg.cv)
    fold = cache["folds"][summary["fold"]]
    tested = set((saved.get("predictions") or {}).get("clip_ids", []))
    if tested != {cache["records"][i].clip_id for i in fold.test}:  # e.g. a search trial, trained on the search's own fold
        raise ValueError(
            f"{fold_dir}: its test clips are not those of the folds its config.yaml makes; cannot tell its validation clips"
        )
    if not (fold_dir / "best.pt").is_file():
        raise FileNotFoundError(f"{fold_dir / 'best.pt'}: missing; the thresholds are chosen with the fold's best model")
    device = torch.device("cpu")
    model = load_model(fold_dir / "best.pt", device).model
    val_set = build_clip_dataset([cache["records"][i] for i in fold.val], cfg.data, cfg.clip_sampler, train=False)
    thresholds = validation_au_thresholds(model, val_set, cfg.trainer, device=device)
    return None if thresholds is None else np.asarray(thresholds)


def tuned_au_f1(run_dir: Path) -> float:
    """A finished run's pooled test AU F1 with each fold's test predictions decided at that fold's
    validation thresholds (``au_f1_tuned`` of metrics.json, also for runs written before it was)."""
    truth, scores, thresholds, cache = [], [], [], {}
    for result_path in sorted(run_dir.glob("fold*/result.json")):
        saved = json.loads(result_path.read_text())
        predictions = saved.get("predictions") or {}
        if not predictions.get("au_probs"):
            continue
        chosen = fold_au_thresholds(run_dir, result_path.parent, saved, cache)
        truth.append(np.asarray(predictions["au_true"]))
        scores.append(np.asarray(predictions["au_probs"]))
        thresholds.append(np.broadcast_to(0.5 if chosen is None else chosen, scores[-1].shape))
    if not scores:
        raise FileNotFoundError(f"{run_dir}: no fold with test AU predictions (fold*/result.json)")
    return au_metrics(np.concatenate(truth), np.concatenate(scores), np.concatenate(thresholds))["au_f1"]


def find_resumable(run_dir: Path, *, named: bool) -> Path:
    """The run to continue: ``run_dir`` itself when it was named (``hydra.run.dir=...``) or has
    checkpoints; otherwise the newest unfinished run beside it."""
    if named or any(run_dir.glob("fold*/last.pt")):
        return run_dir
    candidates = [
        p.parent.parent for p in run_dir.parent.glob("*/fold*/last.pt") if not (p.parent.parent / "metrics.json").exists()
    ]
    if not candidates:
        raise FileNotFoundError(f"resume=true but no unfinished run with checkpoints under {run_dir.parent}")
    return max(candidates, key=lambda p: max(f.stat().st_mtime for f in p.glob("fold*/last.pt")))


# What a resumed run may change: how it runs, not what it learns from or is measured on.
RESUME_SAFE_KEYS = (
    "device",
    "resume",
    "trainer.num_workers",
    "trainer.progress",
    "trainer.threads",
    "trainer.eval_batch_size",
    "data.cache_dir",
    "data.backend",
)


def _flat(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        out.update(_flat(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def check_resume(saved: dict, cfg: DictConfig, run_dir: Path) -> list[str]:
    """Refuse to continue a run under other data, split, model, loss or training settings (one line
    naming the keys); the allowed changes (``RESUME_SAFE_KEYS``) are returned, to be recorded."""
    then, now = _flat(saved), _flat(plain_config(cfg))
    changed = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
    safe = [k for k in changed if k.startswith(RESUME_SAFE_KEYS)]
    unsafe = [k for k in changed if k not in safe]
    safe = [k for k in safe if k != "resume"]  # the resume itself is no change to record
    if unsafe:
        shown = ", ".join(f"{k} (then {then.get(k)!r}, now {now.get(k)!r})" for k in unsafe[:4])
        more = f" and {len(unsafe) - 4} more" if len(unsafe) > 4 else ""
        raise ValueError(
            f"{run_dir}: resume=true with other settings than the run's: {shown}{more}; resume with its settings, "
            "or start a new run"
        )
    return safe


def run(
    cfg: DictConfig,
    run_dir: Path,
    *,
    on_epoch: FoldEpochCallback | None = None,
    records=None,
    folds=None,
    named: bool = True,
) -> dict:
    """Train every fold of ``cfg.cv``, write the run folder, return the summary metrics.

    ``records`` and ``folds`` replace the data config's records and the protocol's folds (the search
    passes its own fold, whose test part is empty during trials). With ``resume=true`` the run in
    ``run_dir`` continues; when the folder was not ``named`` by the user (Hydra's dated default),
    the newest unfinished run beside it does. A resumed run keeps its settings: another data set,
    split, model, loss or training setting is refused; a change of how it runs (workers, device,
    progress display) is allowed and recorded in its ``resumed.jsonl``.
    """
    cfg = resolve_config(cfg)
    TrainerConfig(**OmegaConf.to_container(cfg.trainer, resolve=True)).check()  # before any work
    device = select_device(cfg.device)
    if cfg.trainer.get("threads"):  # process-wide, as torch.set_num_threads is
        torch.set_num_threads(int(cfg.trainer.threads))
    dist.init_from_env(device)
    resume = bool(cfg.resume)
    if resume:
        run_dir = dist.broadcast(find_resumable(run_dir, named=named) if dist.is_main() else None)
        saved = run_dir / "config.yaml"
        if saved.exists():
            allowed = check_resume(OmegaConf.to_container(OmegaConf.load(saved), resolve=True), cfg, run_dir)
            if allowed and dist.is_main():
                with (run_dir / "resumed.jsonl").open("a") as f:
                    now = _flat(plain_config(cfg))
                    f.write(
                        json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "changed": {k: now.get(k) for k in allowed}})
                        + "\n"
                    )
            log.info("resuming %s%s", run_dir, f" (changed: {', '.join(allowed)})" if allowed else "")
        else:
            log.info("resume=true: nothing to resume in %s yet, starting there", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    records = load_records(cfg.data) if records is None else records
    names, au_list = class_names(cfg.data), [int(a) for a in cfg.data.aus]
    if folds is None:
        folds = build_folds(records, cfg.cv)
    meta = {"config": plain_config(cfg), "class_names": names, "au_names": au_list, "input": ClipSpec.from_config(cfg).to_dict()}
    provenance = environment(device) | {"data": data_provenance(cfg.data, records)}
    for name, part in provenance["data"].get("datasets", {}).items():
        if "clips" not in part:  # a composite's records handed over (a search's): nothing read here
            continue
        log.info(
            "%s: %s clips of %s subjects; excluded by the label map: %s",
            name,
            part.get("clips"),
            part.get("subjects"),
            part.get("excluded") or "none",
        )
    log.info(
        "torch %s on %s (%s, %d threads); data %s",
        provenance["torch"],
        provenance["device"],
        provenance["gpu"] or provenance["cpu"],
        provenance["threads"],
        provenance["data"].get("synthetic_set_sha256") or provenance["data"].get("annotations_sha256"),
    )
    if dist.is_main():
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    pooled, pooled_folds, summaries, histories = Predictions(), [], [], []
    for fold in folds:
        predictions, summary, history = run_fold(
            cfg, records, fold, run_dir / f"fold{fold.index}", device=device, meta=meta, resume=resume, on_epoch=on_epoch
        )
        summaries.append(summary)
        histories.append(history)
        if predictions is not None:
            pooled.extend(predictions)
            pooled_folds += [fold.index] * len(predictions.clip_ids)
    val_uf1 = float(np.mean([s["val_uf1"] for s in summaries if s["val_uf1"] is not None] or [0.0]))
    result = {"val_uf1": val_uf1, "folds": summaries, "protocol": cfg.cv.protocol, "classes": names, "environment": provenance}
    if pooled.clip_ids:
        metrics = pooled.metrics(len(names))
        result = named_metrics(metrics, names, au_list) | result
    if dist.is_main():
        write_outputs(run_dir, result, pooled, pooled_folds, histories, names, au_list, summaries)
    dist.barrier()
    return result


def write_outputs(
    run_dir: Path, result: dict, pooled: Predictions, folds: list[int], histories, names, au_list, summaries
) -> None:
    if pooled.clip_ids:
        table = predictions_table(pooled, names, au_list)
        table.insert(0, "fold", folds)
        table.to_csv(run_dir / "predictions.csv", index=False)
        plot_confusion(
            result["confusion"],
            names,
            run_dir / "confusion_matrix.png",
            title=f"test, pooled over {len(summaries)} fold(s): UF1 {result['uf1']:.3f}, UAR {result['uar']:.3f}",
        )
    if any(histories):  # a model trained by epochs (the classical floor has none)
        plot_curves(histories, run_dir / "curves.png")
    # the model to deploy: the fold of the best validation UF1 (without validation: the first fold's last epoch)
    best = max((s for s in summaries if s["val_uf1"] is not None), key=lambda s: s["val_uf1"], default=None)
    if best is None and summaries:
        best = summaries[0]
    if best is not None and (run_dir / f"fold{best['fold']}" / "best.pt").exists():
        shutil.copyfile(run_dir / f"fold{best['fold']}" / "best.pt", run_dir / "best.pt")
    write_json(run_dir / "metrics.json", result)
    if "uf1" in result:
        log.info(
            "test (pooled): UF1 %.4f  UAR %.4f  accuracy %.4f  AU F1 %s",
            result["uf1"],
            result["uar"],
            result["accuracy"],
            au_f1_text(result),
        )
    for name, part in result.get("per_dataset", {}).items():
        log.info("test (pooled) on %s: UF1 %.4f  UAR %.4f  (%d clips)", name, part["uf1"], part["uar"], part["clips"])
    log.info("results in %s", run_dir)
