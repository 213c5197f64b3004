"""Score folders of recordings: ``mer-score checkpoint=RUN/best.pt input=DIR output=results.csv``.

The command line of :func:`mer.predict` (the same code, :mod:`mer.scoring.run`), writing to a
file that survives kills: one row per interval (video, status ok / no_face / no_event / error,
reason, onset / apex / offset in frames and seconds, the spotter's score, the face box, the
emotion and its probability, a probability per class and per AU), appended per video.
``frames_output=...`` adds a per-frame AU table. A broken file gets an ``error`` row and the batch
goes on; the run ends with a summary and exits 1 when any video failed. Re-running the same
command skips finished videos (``overwrite=true`` redoes them, ``retry_failed=true`` the failed
ones). ``shard=I/N`` (or a Slurm job array's task, or torchrun's RANK / WORLD_SIZE) scores every
N-th video into ``<output>.part-I-of-N``; ``merge=<output>`` joins the parts. With
``data=<format> data.annotations=FILE`` the annotated intervals are scored instead of spotted;
adding ``evaluate.spotting=true`` spots in the annotated videos and writes the MEGC spotting
metrics beside the table, ``<output stem>.spotting.json`` (:mod:`mer.scoring.spotting_eval`).
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mer.cli import SomeVideosFailed, command

# Light imports only at module level: spawned DataLoader workers import the main module (this one,
# under ``python -m mer.score``) before they unpickle their VideoJobs; models, training code and
# pandas are imported where they are used, in the main process.

log = logging.getLogger("mer.score")


def score(cfg: DictConfig) -> dict:
    """Score the inputs of a ``score`` config; returns counts (ok, no_face, no_event, error, skipped)."""
    from mer.data.build import annotation_files, load_records
    from mer.data.synthetic.cache import default_cache_dir
    from mer.runtime import select_device
    from mer.scoring.inputs import find_videos, parse_shard
    from mer.scoring.models import load_scoring_model
    from mer.scoring.outputs import ResultWriter, shard_path
    from mer.scoring.run import columns, score_videos
    from mer.scoring.spotting import SpottingConfig

    spot_annotated = evaluates_spotting(cfg)
    model = load_scoring_model(cfg.checkpoint, select_device(cfg.device))
    records_by_video = truth = None
    if spot_annotated:  # spot in the annotated videos (and input's), then compare with the annotations
        truth = read_truth(cfg)
        videos = sorted({Path(r.path) for r in truth} | set(find_videos(cfg.input) if cfg.get("input") else ()), key=str)
        if not videos:
            raise ValueError(f"evaluate.spotting=true: no annotated interval in {annotation_files(cfg.data)} and no input=")
    elif cfg.get("data") is not None:  # annotated intervals: read as training reads them
        records_by_video = defaultdict(list)
        for r in load_records(OmegaConf.merge(cfg.data, {"strict": False})):
            records_by_video[r.path].append(r)
        videos = sorted((Path(p) for p in records_by_video), key=str)
    else:
        videos = find_videos(cfg.input)
        if not videos:
            raise FileNotFoundError(f"no video or frame folder found in input={cfg.input}")
    shard = parse_shard(cfg.shard)
    if shard is not None:
        videos = videos[shard[0] :: shard[1]]
    output = shard_path(Path(cfg.output), shard)
    frames_output = shard_path(Path(cfg.frames_output), shard) if cfg.frames_output else None
    row_columns, frame_columns = columns(model)
    model_id = {"path": model.path, "sha256": model.digest}
    writer = ResultWriter(
        output, row_columns, frames_path=frames_output, frame_columns=frame_columns, overwrite=cfg.overwrite, model=model_id
    )
    retry = {"error"} if cfg.retry_failed else set()
    todo = [v for v in videos if writer.done.get(str(v)) is None or writer.done[str(v)] in retry]
    # a video that failed before and is not retried is still a failure of this table, not a finished video
    failed_before = sum(writer.done.get(str(v)) == "error" for v in videos if v not in todo)
    skipped = len(videos) - len(todo) - failed_before
    log.info("%d videos (%d already done) -> %s", len(videos), skipped, output)
    counts = {"ok": 0, "no_face": 0, "no_event": 0, "error": 0}
    if todo:
        counts = score_videos(
            todo,
            model,
            writer,
            face=OmegaConf.to_container(cfg.face, resolve=True),
            spotting=SpottingConfig(**OmegaConf.to_container(cfg.spotting, resolve=True)),
            cache=Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir() / "score",
            records_by_video=records_by_video,
            batch_size=int(cfg.batch_size),
            num_workers=int(cfg.num_workers),
            worker_start=str(cfg.worker_start),
            frames_fps=float(cfg.frames_fps),
            frames=frames_output is not None,
            progress=bool(cfg.progress),
        )
    writer.finish()
    summary = dict(counts, error=counts["error"] + failed_before, skipped=skipped)
    done = summary["ok"] + summary["no_face"] + summary["no_event"]
    log.info(
        "done %d (ok %d, no_face %d, no_event %d), skipped %d, failed %d -> %s",
        done,
        summary["ok"],
        summary["no_face"],
        summary["no_event"],
        skipped,
        summary["error"],
        output,
    )
    print(f"mer.score: done {done}, skipped {skipped}, failed {summary['error']} -> {output}", file=sys.stderr)
    if truth is not None:
        report_spotting(output, truth, cfg)
    return summary


def evaluates_spotting(cfg: DictConfig) -> bool:
    """``data=... evaluate.spotting=true``: spot in the annotated videos and evaluate the spots."""
    if not (cfg.get("evaluate") or {}).get("spotting"):
        return False
    if cfg.get("data") is None:
        raise ValueError("evaluate.spotting=true compares spots with annotations: give data=<format> data.annotations=FILE")
    return True


def read_truth(cfg: DictConfig):
    """The annotated intervals, every one whatever its emotion (``label_map=all``): each counts in spotting."""
    from mer.data.build import load_records

    return load_records(OmegaConf.merge(cfg.data, {"strict": False, "label_map": "all"}))


def report_spotting(table: Path, truth, cfg: DictConfig) -> Path:
    """Evaluate the spotted rows of ``table`` against ``truth`` (MEGC) and write ``<stem>.spotting.json`` beside it."""
    from mer.data.build import annotation_files, data_label_map
    from mer.scoring.spotting_eval import summary_line, write_spotting_report

    options = cfg.evaluate
    path, report = write_spotting_report(
        table,
        truth,
        iou=float(options.iou),
        micro_max_s=float(options.micro_max_s),
        label_map=data_label_map(cfg.data),  # null: the format's own, as reading takes it
        unannotated=str(options.unannotated),
        about={
            "annotations": annotation_files(cfg.data),
            "annotated_intervals": len(truth),
            "skipped_rows": len(truth.skipped),
        },
    )
    if report["analysis_note"]:
        log.warning("%s", report["analysis_note"])
    log.info("%s -> %s", summary_line(report), path)
    print(f"mer.score: {summary_line(report)} -> {path}", file=sys.stderr)
    return path


@command("score")
def main(cfg: DictConfig) -> None:
    from mer.scoring.outputs import merge_parts

    if cfg.merge:
        evaluate = evaluates_spotting(cfg)
        path = merge_parts(Path(cfg.merge))
        print(f"mer.score: merged into {path}", file=sys.stderr)
        if evaluate:
            report_spotting(path, read_truth(cfg), cfg)
        return
    missing = [k for k in ("checkpoint", "input") if not cfg.get(k) and not (k == "input" and cfg.get("data") is not None)]
    if missing:
        raise ValueError(f"set {' and '.join(missing)}=... (the model, and a folder, glob, file or list of videos)")
    summary = score(cfg)
    if summary["error"]:
        # raised, not sys.exit: a multirun over shards still runs the other shards, then exits 1
        failed = summary["error"]
        raise SomeVideosFailed(f"{failed} video(s) failed; their rows in {cfg.output} say why (retry_failed=true redoes them)")


if __name__ == "__main__":
    main()
