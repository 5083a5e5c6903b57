"""One tltpipe process per run directory: an flock on <run>/.lock holding the owner's pid.

The kernel drops the lock when its process dies, so a stale lock file is simply taken over.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tlt_pipe.errors import ConfigError, RunLocked

LOCK = ".lock"


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except IsADirectoryError:
            raise ConfigError(f"{self.path}: a folder where tltpipe keeps the run's lock file; move it away") from None
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"{self.path.parent}: the run directory is a file (or inside one); "
                              "choose another run_dir") from None
        except OSError as exc:
            raise ConfigError(f"{self.path.parent}: cannot use it as the run directory: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(f"{self.path.parent} is in use by another tltpipe process (pid {holder}); "
                            "wait for it or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def is_held(run_dir: Path) -> bool:
    """Whether a live tltpipe process holds run_dir (probes the lock without keeping it)."""
    path = run_dir / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock too
    return False
