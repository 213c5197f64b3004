"""Score a checkpoint on a data set: ``python -m mer.evaluate checkpoint=RUN/best.pt data=...``.

The model, its sampler, crop and AU list come from the checkpoint; the data from ``data=``.
Writes metrics.json, predictions.csv and confusion_matrix.png to the run folder, with the same
metric code as training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from mer.data.build import build_clip_dataset, build_folds, class_names, load_records
from mer.engine.reports import au_f1_text, named_metrics, plot_confusion, predictions_table, write_json
from mer.engine.trainer import evaluate, load_checkpoint, make_loader, select_device
from mer.models.net import build_model

log = logging.getLogger("mer.evaluate")


class LoadedModel(NamedTuple):
    model: torch.nn.Module  # in eval mode, on the device asked for
    config: DictConfig  # its training config
    class_names: list[str]
    au_names: list[int]
    au_thresholds: list[float] | None  # per-AU decision thresholds chosen on validation; None: 0.5 (older checkpoints)


def load_model(checkpoint: str | Path, device="cpu") -> LoadedModel:
    """The model of a checkpoint file, with what it needs to be used (see :class:`LoadedModel`)."""
    ckpt = load_checkpoint(checkpoint)
    train_cfg = OmegaConf.create(ckpt["config"])
    model = build_model(
        train_cfg.model, num_classes=len(ckpt["class_names"]), num_aus=len(ckpt["au_names"]),
        num_frames=train_cfg.clip_sampler.num_frames, crop_size=train_cfg.data.crop_size,
    )  # fmt: skip
    model.load_state_dict(ckpt["model"])
    thresholds = ckpt.get("au_thresholds")
    return LoadedModel(model.to(device).eval(), train_cfg, list(ckpt["class_names"]), [int(a) for a in ckpt["au_names"]],
                       None if thresholds is None else [float(t) for t in thresholds])  # fmt: skip


def run(cfg: DictConfig, run_dir: Path) -> dict:
    device = select_device(cfg.device)
    model, train_cfg, names, au_names, au_thresholds = load_model(cfg.checkpoint, device)
    if class_names(cfg.data) != names:
        raise ValueError(f"the checkpoint predicts {names} but data.label_map={cfg.data.label_map} gives {class_names(cfg.data)}")
    records = load_records(cfg.data)
    if cfg.split == "test":
        folds = build_folds(records, train_cfg.cv)
        records = [records[i] for fold in folds for i in fold.test]
    elif cfg.split != "all":
        raise ValueError(f"unknown split {cfg.split!r}; valid choices: all, test")
    data_cfg = OmegaConf.merge(cfg.data, {"aus": au_names, "crop_size": train_cfg.data.crop_size, "resize": train_cfg.data.get("resize")})
    dataset = build_clip_dataset(records, data_cfg, train_cfg.clip_sampler, train=False)
    loader = make_loader(dataset, batch_size=cfg.batch_size, train=False, seed=0, num_workers=cfg.num_workers, device=device)
    predictions = evaluate(model, loader, device=device, progress=True).with_au_thresholds(au_thresholds)
    result = named_metrics(predictions.metrics(len(names)), names, au_names) | {"checkpoint": str(cfg.checkpoint), "clips": len(records)}
    run_dir.mkdir(parents=True, exist_ok=True)
    predictions_table(predictions, names, au_names).to_csv(run_dir / "predictions.csv", index=False)
    plot_confusion(result["confusion"], names, run_dir / "confusion_matrix.png", title=f"UF1 {result['uf1']:.3f}, UAR {result['uar']:.3f}")
    write_json(run_dir / "metrics.json", result)
    log.info("%d clips: UF1 %.4f  UAR %.4f  accuracy %.4f  AU F1 %s -> %s", len(records), result["uf1"], result["uar"], result["accuracy"],
             au_f1_text(result), run_dir)  # fmt: skip
    return result


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    return run(cfg, Path(HydraConfig.get().runtime.output_dir))["uf1"]


if __name__ == "__main__":
    main()
