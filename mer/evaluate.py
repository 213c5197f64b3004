"""Score a checkpoint on a data set: ``python -m mer.evaluate checkpoint=RUN/best.pt data=...``.

The model, its sampler, its input spec (size, representation: the preprocessing) and AU list come
from the checkpoint; the data (annotations, where the clips are, how to read them) from ``data=``.
Writes metrics.json, predictions.csv and confusion_matrix.png to the run folder, with the same
metric code as training.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mer.cli import command
from mer.data.build import build_clip_dataset, build_folds, class_names, load_records
from mer.data.clip import ClipSpec
from mer.data.dataset import ClipDataset
from mer.engine.loader import make_loader
from mer.engine.loop import predict
from mer.engine.reports import au_f1_text, named_metrics, plot_confusion, predictions_table, write_json
from mer.models.checkpoint import LoadedModel, load_model
from mer.runtime import select_device

log = logging.getLogger("mer.evaluate")


def evaluation_set(records, data_cfg, loaded: LoadedModel) -> ClipDataset:
    """The clips of ``records`` as the model of ``loaded`` takes them: read as ``data_cfg`` says,
    sampled and preprocessed as the checkpoint records (its sampler, its input spec)."""
    data_cfg = OmegaConf.merge(data_cfg, {"aus": loaded.au_names})
    return build_clip_dataset(records, data_cfg, loaded.config.clip_sampler, train=False, spec=ClipSpec.from_dict(loaded.input))


def run(cfg: DictConfig, run_dir: Path) -> dict:
    device = select_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    model, train_cfg, names, au_names, au_thresholds = (
        loaded.model,
        loaded.config,
        loaded.class_names,
        loaded.au_names,
        loaded.au_thresholds,
    )
    if class_names(cfg.data) != names:
        raise ValueError(f"the checkpoint predicts {names} but data.label_map={cfg.data.label_map} gives {class_names(cfg.data)}")
    records = load_records(cfg.data)
    if cfg.split == "test":
        folds = build_folds(records, train_cfg.cv)
        records = [records[i] for fold in folds for i in fold.test]
    elif cfg.split != "all":
        raise ValueError(f"unknown split {cfg.split!r}; valid choices: all, test")
    dataset = evaluation_set(records, cfg.data, loaded)
    loader = make_loader(dataset, batch_size=cfg.batch_size, train=False, seed=0, num_workers=cfg.num_workers, device=device)
    predictions = predict(model, loader, device=device, progress=True).with_au_thresholds(au_thresholds)
    result = named_metrics(predictions.metrics(len(names)), names, au_names) | {
        "checkpoint": str(cfg.checkpoint),
        "clips": len(records),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    predictions_table(predictions, names, au_names).to_csv(run_dir / "predictions.csv", index=False)
    plot_confusion(
        result["confusion"], names, run_dir / "confusion_matrix.png", title=f"UF1 {result['uf1']:.3f}, UAR {result['uar']:.3f}"
    )
    write_json(run_dir / "metrics.json", result)
    log.info(
        "%d clips: UF1 %.4f  UAR %.4f  accuracy %.4f  AU F1 %s -> %s",
        len(records),
        result["uf1"],
        result["uar"],
        result["accuracy"],
        au_f1_text(result),
        run_dir,
    )
    return result


@command("evaluate")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    return run(cfg, Path(HydraConfig.get().runtime.output_dir))["uf1"]


if __name__ == "__main__":
    main()
