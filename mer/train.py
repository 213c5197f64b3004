"""Train and evaluate a micro-expression model: ``mer-train`` or ``python -m mer.train``.

    mer-train                                        # the default model on the built-in synthetic set
    mer-train clip_sampler=keyframe model=x3d_tiny cv=kfold
    mer-train data=casme2 data.annotations=CASME2-coding.xlsx data.root=CASME2_RAW_selected cv=loso

The run itself (folds, model selection on validation subjects, the pooled test metrics and the
files of the run folder) is :func:`mer.engine.experiment.run`; this module is its command line.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mer import distributed as dist
from mer.cli import command
from mer.engine.experiment import run


@command("train")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    named = any(o.split("=", 1)[0].lstrip("+") == "hydra.run.dir" for o in hydra_cfg.overrides.hydra)
    try:
        result = run(cfg, Path(hydra_cfg.runtime.output_dir), named=named)
    finally:
        dist.cleanup()
    return float(result.get("uf1", result["val_uf1"]))


if __name__ == "__main__":
    main()
