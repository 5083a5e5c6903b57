"""What the benchmarks share: the tltpipe on PATH, and the wall time of one command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path


def tltpipe() -> str:
    """The tltpipe command a user runs (the benchmarks time it as installed)."""
    found = shutil.which("tltpipe")
    if found is None:
        sys.exit("tltpipe is not on PATH: pip install -e . first")
    return found


def timed(argv: list[str], cwd: Path) -> float:
    """Seconds one run of argv takes, output discarded; a failing command ends the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}")
    return elapsed
