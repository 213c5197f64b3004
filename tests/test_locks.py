"""mer.locks.exclusive between real processes: one holder at a time, and a killed holder frees it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from mer.locks import exclusive

# Takes the lock, says so, holds it for argv[2] seconds.
HOLDER = """
import sys, time
from mer.locks import exclusive
print("trying", flush=True)
with exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def start_holder(lock: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True)


def test_a_second_process_waits_while_the_lock_is_held(tmp_path):
    lock = tmp_path / "study.lock"
    with exclusive(lock):
        other = start_holder(lock, 0)
        assert other.stdout.readline().strip() == "trying"
        try:
            other.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        assert other.poll() is None, "the other process took the lock while this one held it"
    out, _ = other.communicate(timeout=30)  # released: now it gets it
    assert other.returncode == 0 and out.strip() == "held"


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    lock = tmp_path / "study.lock"
    holder = start_holder(lock, 600)
    assert [holder.stdout.readline().strip() for _ in range(2)] == ["trying", "held"]
    holder.kill()  # SIGKILL: no clean-up code runs
    holder.wait()
    taken = threading.Event()

    def take() -> None:
        with exclusive(lock):
            taken.set()

    threading.Thread(target=take, daemon=True).start()
    assert taken.wait(timeout=10), "the lock of a killed process was never released"
