"""Prepare raw recordings once: ``mer-prepare data=dfme data.annotations=FILE output=prepared/``.

The command line of :func:`mer.data.prepare.prepare_clips`: every annotated clip's face aligned
by the eyes (one transform per clip), cropped square and written as a frame folder, with an
annotation file that training and scoring read instead of the raw recordings (``data=csv
data.annotations=prepared/annotations.csv``), so no face is detected per epoch. Re-running the
same command skips the clips already written and redoes a half-written one. The run ends with a
summary; clips without a face are listed in ``no_face.csv``, failures in ``failed.txt`` (the
batch goes on, and the command exits 1 when any clip failed).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mer.cli import PartlyFailed, command

log = logging.getLogger("mer.prepare")

SHOWN_FAILURES = 20  # failure lines printed at the end; failed.txt holds them all


def prepare(cfg: DictConfig):
    """Prepare the clips of a ``prepare`` config; returns the :class:`~mer.data.prepare.PrepareSummary`."""
    from mer.data.build import load_records
    from mer.data.prepare import prepare_clips

    if cfg.get("data") is None:
        raise ValueError("set data=<format> data.annotations=FILE (the raw recordings' annotations), e.g. data=dfme")
    # strict=False: a row that cannot be read (a missing or broken clip) is a failure of its own, not the
    # batch's; its warning is not shown, as it is among the failures of the summary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        records = load_records(OmegaConf.merge(cfg.data, {"strict": False}), label_map="all")
    output = Path(cfg.output)
    log.info("%d clips -> %s", len(records), output)
    summary = prepare_clips(
        records,
        output,
        size=int(cfg.size),
        eye_distance=float(cfg.eye_distance),
        eye_height=float(cfg.eye_height),
        image_format=str(cfg.image_format),
        jpeg_quality=int(cfg.jpeg_quality),
        detect_frames=int(cfg.detect_frames),
        backend=str(cfg.data.get("backend", "decord")),
        overwrite=bool(cfg.overwrite),
        progress=bool(cfg.progress),
        failed=records.skipped,
    )
    for line in summary.failed[:SHOWN_FAILURES]:
        print(f"mer.prepare: failed: {line}", file=sys.stderr)
    if len(summary.failed) > SHOWN_FAILURES:
        print(f"mer.prepare: ... and {len(summary.failed) - SHOWN_FAILURES} more in {output / 'failed.txt'}", file=sys.stderr)
    print(f"mer.prepare: {summary.line()}", file=sys.stderr)
    return summary


@command("prepare")
def main(cfg: DictConfig) -> None:
    summary = prepare(cfg)
    if summary.failed:
        raise PartlyFailed(f"{len(summary.failed)} clip(s) failed; {Path(cfg.output) / 'failed.txt'} says why")


if __name__ == "__main__":
    main()
