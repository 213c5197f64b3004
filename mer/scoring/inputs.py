"""What to score: videos and frame folders from folders, globs, list files; shards of them."""

from __future__ import annotations

import glob as globlib
import os
from collections.abc import Iterator
from pathlib import Path

from omegaconf import OmegaConf

from mer.data.video import VIDEO_SUFFIXES
from mer.scoring.pipeline import is_frame_folder


def find_videos(spec) -> list[Path]:
    """Videos and frame folders from a folder (recursive), a glob, a file, a list file (.txt), or a list."""
    items = list(spec) if isinstance(spec, (list, tuple)) or OmegaConf.is_list(spec) else str(spec).split(",")
    found: set[Path] = set()
    for item in (str(i).strip() for i in items):
        path = Path(item)
        if path.suffix.lower() == ".txt" and path.is_file():
            found.update(find_videos([line for line in path.read_text().splitlines() if line.strip()]))
        elif path.is_dir():
            found.update(_walk(path))
        elif any(ch in item for ch in "*?["):
            for match in globlib.glob(item, recursive=True):
                found.update(_walk(Path(match)) if Path(match).is_dir() else [Path(match)])
        else:
            found.add(path)  # a file (a missing one becomes an error row, not a crash)
    return sorted(found, key=str)


def _walk(folder: Path) -> Iterator[Path]:
    if is_frame_folder(folder):
        yield folder
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.suffix.lower() in VIDEO_SUFFIXES:
            yield entry


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"I/N"``; else a Slurm job array's task (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT);
    else torchrun's RANK of WORLD_SIZE; else None (one process scores everything)."""
    if spec:
        try:
            index, count = (int(v) for v in str(spec).split("/"))
        except ValueError:
            raise ValueError(f"shard={spec!r}: expected I/N, e.g. shard=0/4") from None
        if not 0 <= index < count:
            raise ValueError(f"shard={spec!r}: I must be in 0..N-1")
        return index, count
    if "SLURM_ARRAY_TASK_ID" in os.environ and "SLURM_ARRAY_TASK_COUNT" in os.environ:
        # --array=0-15, 1-16 or 0-60:4: the task's place among the array's tasks
        first, step = int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0")), int(os.environ.get("SLURM_ARRAY_TASK_STEP", "1"))
        return (int(os.environ["SLURM_ARRAY_TASK_ID"]) - first) // step, int(os.environ["SLURM_ARRAY_TASK_COUNT"])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
    return None
