"""What the benchmarks share: the tltpipe on PATH, and the wall time of one command."""

from __future__ import annotations

import compileall
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def tltpipe() -> str:
    """The tltpipe command a user runs (the benchmarks time it as installed): the script installed next to
    this interpreter, as in a virtual environment, rather than a version manager's shim on PATH (pyenv's
    is a shell script that starts another process before tltpipe's, which the peer's launcher, run from
    its own virtual environment, does not pay)."""
    compile_bytecode("tlt_pipe")
    beside = Path(sys.executable).parent / "tltpipe"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("tltpipe")
    if found is None:
        sys.exit("tltpipe is not on PATH: pip install -e . first")
    return found


def compile_bytecode(package: str) -> None:
    """Compile a package's modules once, as pip does when it installs a wheel. An editable checkout is
    compiled on import instead, and not at all where PYTHONDONTWRITEBYTECODE is set: every timed run
    would then include Python compiling the sources that changed since their bytecode was written,
    which no installed copy pays (nor the peers, installed by pip)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{package} is not importable: pip install -e . first")
    for folder in spec.submodule_search_locations:
        compileall.compile_dir(folder, quiet=1)


def timed(argv: list[str], cwd: Path) -> float:
    """Seconds one run of argv takes, output discarded; a failing command ends the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}")
    return elapsed
