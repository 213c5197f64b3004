"""The default training set, generated on first use into a cache folder and reused.

    annotations = ensure_dataset()      # $MER_CACHE or ~/.cache/mer / synthetic / <hash> / annotations.csv

Safe for concurrent callers: generation happens in a temporary folder under a file lock and is
renamed into place when complete; a folder without its DONE marker is never taken as done.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from mer.data.synthetic import generator
from mer.data.synthetic.generator import check_main_guard
from mer.data.synthetic.settings import make_settings, settings_key
from mer.locks import exclusive


def dataset_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over the relative path and bytes of every file of a generated set but ``DONE`` and
    meta.json (which records the generation's time and workers), in sorted order: the annotations
    and every video or frame. Two sets with the same digest are the same data to the byte.

    ``folder`` holds annotations.csv (a file in it is taken for its folder). Cheap for the
    built-in set (288 clips, about 5 MB); it tells, between machines, a data difference from a
    torch one.
    """
    root = Path(folder)
    root = root.parent if root.is_file() else root
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in ("DONE", "meta.json")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("MER_CACHE") or Path.home() / ".cache" / "mer")


def ensure_dataset(cache_dir: str | os.PathLike | None = None, **settings) -> Path:
    """The annotations.csv of a synthetic set with these settings, generated on first use.

    The set lives in ``<cache_dir>/synthetic/<hash of settings and generator version>/``
    (``cache_dir`` default: ``$MER_CACHE`` or ``~/.cache/mer``). It is generated into a temporary
    folder under a file lock and renamed into place when complete, so concurrent callers wait for
    one generation and a folder without its ``DONE`` marker (a crash) is never used, but redone.
    """
    st = make_settings(**settings)
    check_main_guard()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = root / "synthetic"
    key = settings_key(st)
    final = root / key
    if (final / "DONE").is_file():
        return final / "annotations.csv"
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f"{key}.lock"):  # without fcntl, the atomic rename below still keeps half-written sets out
        if (final / "DONE").is_file():  # another process finished it while we waited
            return final / "annotations.csv"
        if final.exists():
            shutil.rmtree(final)  # unfinished: never taken as done
        for stale in root.glob(f".{key}-*"):  # temporaries of crashed runs (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            generator.generate(tmp, **asdict(st))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, final)  # atomic: the folder appears complete or not at all
        except OSError:
            if not (final / "DONE").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # without fcntl another process may have won the race
    return final / "annotations.csv"
