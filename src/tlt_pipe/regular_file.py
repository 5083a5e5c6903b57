"""Opening a file a user gave or a dataset holds without surprises: a FIFO is never waited on (it is opened
without blocking, then looked at), and a device or socket is never read as if it were a file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from tlt_pipe.errors import ConfigError

NOT_REGULAR = "not a regular file (a FIFO, device or socket)"
SMALL_FILE = 1 << 20  # bytes: what read_text reads at most unless told (a config is a few KB)


class NotRegular(OSError):
    """A FIFO, device or socket where a file was expected; kind names which ("a FIFO", "a device or socket")."""

    def __init__(self, path: str | os.PathLike[str], kind: str):
        super().__init__(errno.EINVAL, NOT_REGULAR, os.fspath(path))
        self.kind = kind


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """path opened for reading in binary: IsADirectoryError for a folder, NotRegular for a FIFO, a device or a
    socket, any other OSError as the system gives it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer would block the open itself
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotRegular(path, "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_text(path: Path, encoding: str = "utf-8", limit: int = SMALL_FILE) -> str:
    """The text of a file a user names or keeps (a config, a class map, a launcher file, a manifest). A FIFO,
    a device (/dev/zero) or a file past limit bytes is refused with a ConfigError instead of hanging or
    filling memory; OSError and UnicodeDecodeError reach the caller, which knows what the file was for."""
    try:
        handle = open_regular(path)
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a file") from None
    except NotRegular as exc:
        raise ConfigError(f"{path}: {exc.kind}, not a file") from None
    with handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{path}: more than {limit:,} bytes: too large for a file tltpipe reads whole")
    return data.decode(encoding)
