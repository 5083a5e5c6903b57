"""Opening a file a user gave or a dataset holds without surprises: a FIFO is never waited on (it is opened
without blocking, then looked at), and a device or socket is never read as if it were a file."""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


class NotRegular(OSError):
    """A FIFO, device or socket where a file was expected; kind names which ("a FIFO", "a device or socket")."""

    def __init__(self, path: str | os.PathLike[str], kind: str):
        super().__init__(errno.EINVAL, "not a regular file (a FIFO, device or socket)", os.fspath(path))
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
