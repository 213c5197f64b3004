"""Result tables that survive kills: rows appended and flushed per video, a done-list, resume, merge.

Each finished video's rows are written in one block and flushed, then the video is appended to
``<output>.state/done.txt``. On a re-run, videos in done.txt are skipped and any rows of a video
that is not (a kill between its rows and its done line) are dropped first, so a kill loses at most
the videos in progress and never leaves a half-written block behind.

CSV (default) and JSONL are appended directly; Parquet, which cannot be appended, is collected in
a JSONL journal in the state folder and written at the end of the run.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a table is built: the scoring workers import this module's callers
    import pandas as pd  # noqa: F401

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def output_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: unknown output type {path.suffix!r}; use .csv, .jsonl or .parquet") from None


def shard_path(path: Path, shard: tuple[int, int] | None) -> Path:
    """``results.csv`` -> ``results.part-0-of-2.csv`` for shard 0 of 2."""
    if shard is None:
        return path
    index, count = shard
    return path.with_name(f"{path.stem}.part-{index}-of-{count}{path.suffix}")


class ResultWriter:
    """Appends rows of finished videos to ``path`` (and optional ``frames_path``), crash-safely."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        *,
        frames_path: Path | None = None,
        frame_columns: Sequence[str] = (),
        overwrite: bool = False,
        model: dict | None = None,
    ) -> None:
        self.path, self.columns, self.kind = Path(path), list(columns), output_format(Path(path))
        self.frames_path, self.frame_columns = (Path(frames_path) if frames_path else None), list(frame_columns)
        self.state = self.path.with_name(self.path.name + ".state")
        if overwrite:
            for p in (self.path, self.frames_path, self.state):
                if p is not None and p.exists():
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        self.state.mkdir(parents=True, exist_ok=True)
        if model is not None:
            self._check_model(model)
        self.done_file = self.state / "done.txt"
        self.done: dict[str, str] = {}
        if self.done_file.exists():
            for line in self.done_file.read_text().splitlines():
                if "\t" in line:
                    video, status = line.split("\t", 1)
                    self.done[video] = status
        self._tables = [(self._table_path(self.path), self.columns)]
        if self.frames_path is not None:
            self._tables.append((self._table_path(self.frames_path), self.frame_columns))
        for table, columns in self._tables:
            self._drop_unfinished(table, self._columns_changed(table, columns))

    def _check_model(self, model: dict) -> None:
        """One table, one model: the model that wrote it is kept in the state folder (``model.json``:
        path and weights digest); another model is refused, with the way out named."""
        record = self.state / "model.json"
        if record.exists():
            first = json.loads(record.read_text())
            if first.get("sha256") != model.get("sha256"):
                then, now = (f"{m.get('path')} (sha256 {str(m.get('sha256'))[:12]})" for m in (first, model))
                raise ValueError(
                    f"{self.path}: written by the model {then}, not {now}; score into another output or pass overwrite=true"
                )
            return
        record.write_text(json.dumps(model, indent=2) + "\n")

    def _table_path(self, path: Path) -> Path:
        """Where rows go: the file itself, or for Parquet its journal."""
        return self.state / f"{path.name}.journal.jsonl" if output_format(path) == "parquet" else path

    @staticmethod
    def _columns_changed(table: Path, columns: list[str]) -> bool:
        """True when an existing table lacks some of ``columns`` (written by an older version: its
        rows are carried over, the new columns left empty); an error when it has columns these
        rows would not (written by a model with other classes or AUs: appending would mix them)."""
        if not table.exists() or table.stat().st_size == 0:
            return False
        with open(table, newline="") as f:
            first = f.readline()
        if table.suffix.lower() == ".csv":
            existing = next(csv.reader([first]), [])
        else:
            try:
                existing = list(json.loads(first)) if first.strip() else []
            except json.JSONDecodeError:  # a kill mid-line of the first row: dropped as unfinished
                return False
        foreign = [c for c in existing if c not in columns]
        if foreign:
            raise ValueError(
                f"{table}: written with other columns ({', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''} are not this "
                "model's); score into another output or pass overwrite=true"
            )
        return existing != list(columns)

    def _drop_unfinished(self, table: Path, rewrite: bool = False) -> None:
        if not table.exists():
            return
        rows = read_rows(table)
        keep = [r for r in rows if str(r.get("video")) in self.done]
        if rewrite or len(keep) != len(rows) or not table.read_bytes().endswith(b"\n"):
            self._rewrite(table, keep)

    def _rewrite(self, table: Path, rows: list[dict]) -> None:
        columns = self.columns if table == self._tables[0][0] else self.frame_columns
        tmp = table.with_name(table.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            _write_block(f, table, columns, rows, header=True)
        tmp.replace(table)

    def write_video(self, video: str, status: str, rows: list[dict], frame_rows: Iterable[dict] = ()) -> None:
        blocks = [rows, list(frame_rows)]
        for (table, columns), block in zip(self._tables, blocks):
            header = not table.exists() or table.stat().st_size == 0
            with open(table, "a", newline="") as f:
                _write_block(f, table, columns, block, header=header)
                f.flush()
        with open(self.done_file, "a") as f:
            f.write(f"{video}\t{status}\n")
            f.flush()
        self.done[video] = status

    def finish(self) -> None:
        """Parquet outputs are written from their journals (every run, so they reflect all done videos)."""
        import pandas as pd

        for final, (table, columns) in zip([self.path, self.frames_path], self._tables):
            if final is not None and output_format(final) == "parquet":
                frame = pd.DataFrame(read_rows(table), columns=columns) if table.exists() else pd.DataFrame(columns=columns)
                frame.to_parquet(final, index=False)


def _write_block(f, table: Path, columns: Sequence[str], rows: list[dict], *, header: bool) -> None:
    if table.suffix.lower() == ".csv":
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)
    else:  # JSONL (also the Parquet journal)
        f.write("".join(json.dumps({c: row.get(c) for c in columns}) + "\n" for row in rows))


def read_rows(path: Path) -> list[dict]:
    """Rows of a CSV, JSONL or Parquet result file (a trailing partial line is ignored)."""
    kind = output_format(path) if path.suffix.lower() in FORMATS else "jsonl"
    if kind == "parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a kill mid-line
    if kind == "csv":
        return list(csv.DictReader(text.splitlines()))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


_PART = re.compile(r"\.part-(\d+)-of-(\d+)$")


def merge_parts(path: Path) -> Path:
    """Join ``<stem>.part-I-of-N<suffix>`` files into ``path``, sorted by video and interval."""
    import pandas as pd

    path = Path(path)
    parts = sorted(path.parent.glob(f"{path.stem}.part-*-of-*{path.suffix}"))
    if not parts:
        raise FileNotFoundError(f"no part files {path.stem}.part-*-of-*{path.suffix} in {path.parent}")
    found = {}
    for part in parts:
        match = _PART.search(part.name[: -len(path.suffix)] if path.suffix else part.name)
        found[int(match.group(1))] = int(match.group(2))
    counts = set(found.values())
    if len(counts) != 1:
        raise ValueError(f"part files of different shard counts: {sorted(counts)}")
    (count,) = counts
    missing = sorted(set(range(count)) - set(found))
    if missing:
        raise FileNotFoundError(f"shards {missing} of {count} are missing for {path}")
    frames = [pd.DataFrame(read_rows(p)) for p in parts]
    table = pd.concat(frames, ignore_index=True)
    sort = [c for c in ("video", "interval", "frame") if c in table.columns]
    if sort:
        table["_interval"] = pd.to_numeric(table.get("interval"), errors="coerce").fillna(-1)
        table = table.sort_values(["video", "_interval"] + [c for c in sort if c == "frame"], kind="stable").drop(
            columns="_interval"
        )
    kind = output_format(path)
    if kind == "csv":
        table.to_csv(path, index=False)
    elif kind == "jsonl":
        table.to_json(path, orient="records", lines=True)
    else:
        table.to_parquet(path, index=False)
    return path
