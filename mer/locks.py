"""An exclusive lock between processes on one machine (or a shared file system), by ``filelock``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing; waits as long as another process holds it).

    ``flock`` on POSIX, ``msvcrt`` on Windows: the operating system releases it when its holder dies,
    so a killed worker never leaves a lock behind.
    """
    with FileLock(str(path)):
        yield
