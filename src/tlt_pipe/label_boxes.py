"""The (width, height) of every KITTI box, as a fraction of the size of its own image.

What ``yolo_v4 kmeans`` clusters. Reading is most of the work on a large dataset (one label
file and one image header per image), so it is spread over the cores: each worker reads a
run of label files, takes fields 5-8 of every line with at least 15 fields with one regular
expression per file, reads the image header (tlt_pipe.image_header) only for files that
hold a box, and converts all its numbers at once with numpy. When that fast path sees
anything unusual (a character that is not part of a plain decimal number, a count that
does not add up, a box that is not finite) the run is read again line by line, which
either gives the same boxes or stops at the first bad line, naming file:line.

Lines break at LF, CRLF or CR; fields are separated by ASCII whitespace.
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlt_pipe.datasets.discover import IMAGE_EXTS
from tlt_pipe.errors import InputError
from tlt_pipe.image_header import image_size
from tlt_pipe.process_pool import ignore_interrupts, imap_ordered, usable_cpus
from tlt_pipe.regular_file import NOT_REGULAR

__all__ = ["as_dirs", "kitti_box_arrays", "load_kitti_boxes"]

PathLike = str | os.PathLike[str]
# (label directory, label file name, image directory, its image's name or None when there is none)
Task = tuple[str, str, str, "str | None"]

# Whitespace made plain before matching: tabs, vertical tabs and form feeds separate fields
# like spaces, a carriage return (alone or before LF) ends a line.
_PLAIN_SPACE = bytes.maketrans(b"\t\x0b\x0c\r", b"   \n")
# Possessive repeats (Python 3.11+) spare the regular expression engine its backtracking.
_POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""
_FIELD = rb"[^ \n]+" + _POSSESSIVE.encode()
_GAP = rb" +" + _POSSESSIVE.encode()
# Fields 5-8 (left, top, right, bottom) of a line with at least 15 fields, as one group.
_ROW = re.compile(rb"^ *" + (_FIELD + _GAP) * 4 + rb"(" + _GAP.join([_FIELD] * 4) + rb")" + (_GAP + _FIELD) * 7,
                  re.MULTILINE)
# What plain decimal numbers and the gaps between them are made of.
_PLAIN = re.compile(rb"[0-9eE+\-.\s]*")
_READ_BLOCK = 1 << 16
_MAX_LABEL_BLOCKS = 1024  # 64 MiB: a label file is a few KB
# Fewer label files than this are read in this process: a pool costs more than it saves.
_PARALLEL_FROM = 2000
_CHUNKS_PER_WORKER = 4


def as_dirs(value: PathLike | Sequence[PathLike]) -> list[Path]:
    """One directory or several, as a list."""
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value]


def _listing(directory: Path, what: str) -> list[str]:
    """The names in a directory, sorted."""
    try:
        return sorted(os.listdir(directory))
    except OSError as exc:
        raise InputError(f"{directory}: cannot list the {what} directory ({exc.strerror or exc})") from None


def _image_index(image_dir: Path) -> dict[str, str]:
    """stem -> image name (the first of the stem's image extensions in name order)."""
    index: dict[str, str] = {}
    splitext = os.path.splitext
    for name in reversed(_listing(image_dir, "image")):  # the first in name order is written last
        stem, ext = splitext(name)
        if ext.lower() in IMAGE_EXTS:
            index[stem] = name
    return index


def _tasks(label_dirs: list[Path], image_dirs: list[Path]) -> list[Task]:
    if len(label_dirs) != len(image_dirs):
        raise InputError(
            f"{len(label_dirs)} label directories but {len(image_dirs)} image directories: pair them one to one"
        )
    tasks: list[Task] = []
    for label_dir, image_dir in zip(label_dirs, image_dirs):
        labels = [name for name in _listing(label_dir, "label") if name.endswith(".txt")]
        index = _image_index(image_dir) if labels else {}
        folder, images = os.fspath(label_dir), os.fspath(image_dir)
        tasks.extend((folder, name, images, index.get(name[:-4])) for name in labels)
    return tasks


class _Folders:
    """Open handles on the folders of a run of tasks: each file is then opened relative to
    its folder's handle, which spares the kernel walking the whole path every time."""

    def __init__(self) -> None:
        self.handles: dict[str, int] = {}

    def __enter__(self) -> _Folders:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self.handles.values():
            os.close(handle)
        self.handles.clear()

    def handle(self, folder: str, what: str) -> int:
        handle = self.handles.get(folder)
        if handle is None:
            try:
                handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError as exc:
                raise InputError(f"{folder}: cannot open the {what} directory ({exc.strerror or exc})") from None
            self.handles[folder] = handle
        return handle

    def read_label(self, task: Task) -> bytes:
        try:  # O_NONBLOCK: a FIFO without a writer would block the open itself
            fd = os.open(task[1], os.O_RDONLY | os.O_NONBLOCK, dir_fd=self.handle(task[0], "label"))
            try:
                parts = [os.read(fd, _READ_BLOCK)]
                while len(parts[-1]) == _READ_BLOCK and len(parts) < _MAX_LABEL_BLOCKS:
                    parts.append(os.read(fd, _READ_BLOCK))
                # An empty read or an endless one (/dev/zero) is looked at; a plain file is not stat'ed.
                if (not parts[0] or len(parts) == _MAX_LABEL_BLOCKS) and not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise InputError(f"{_label_path(task)}: {NOT_REGULAR}")
                if len(parts) == _MAX_LABEL_BLOCKS:
                    raise InputError(f"{_label_path(task)}: more than {_MAX_LABEL_BLOCKS * _READ_BLOCK >> 20} MiB: "
                                     "not a KITTI label file")
            finally:
                os.close(fd)
        except IsADirectoryError:
            return b""  # a directory named like a label file holds no boxes
        except OSError as exc:
            raise InputError(f"{_label_path(task)}: cannot read the label file ({exc.strerror or exc})") from None
        return b"".join(parts)

    def image_size(self, task: Task) -> tuple[int, int]:
        _, name, image_dir, image = task
        if image is None:
            raise InputError(f"{_label_path(task)}: no image named {name[: -len('.txt')]}.* in {image_dir}")
        return image_size(os.path.join(image_dir, image), dir_fd=self.handle(image_dir, "image"), name=image)


def _label_path(task: Task) -> str:
    return os.path.join(task[0], task[1])


def _boxes_line_by_line(task: Task, text: bytes, folders: _Folders) -> list[tuple[float, float]]:
    """The boxes of one label file, read the plain way; InputError at the first bad line."""
    boxes: list[tuple[float, float]] = []
    size: tuple[int, int] | None = None
    for lineno, line in enumerate(text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), start=1):
        fields = line.split()
        if len(fields) < 15:
            continue
        shown = line.strip().decode("utf-8", "replace")[:200]
        try:
            x1, y1, x2, y2 = (float(v) for v in fields[4:8])
        except ValueError:
            raise InputError(f"{_label_path(task)}:{lineno}: box coordinates are not numbers: {shown!r}") from None
        if size is None:
            size = folders.image_size(task)
        w, h = (x2 - x1) / size[0], (y2 - y1) / size[1]
        if not (math.isfinite(w) and math.isfinite(h)):
            raise InputError(f"{_label_path(task)}:{lineno}: box coordinates are not finite: {shown!r}")
        boxes.append((w, h))
    return boxes


def _read_run(tasks: Sequence[Task]) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of a run of label files, in order, as arrays of widths and heights."""
    with _Folders() as folders:
        try:
            fast = _read_run_fast(tasks, folders)
        except InputError:  # read again line by line, which reports the first problem in order
            fast = None
        if fast is not None:
            return fast
        boxes = [box for task in tasks for box in _boxes_line_by_line(task, folders.read_label(task), folders)]
    return np.array([b[0] for b in boxes], dtype=np.float64), np.array([b[1] for b in boxes], dtype=np.float64)


def _read_run_fast(tasks: Sequence[Task], folders: _Folders) -> tuple[np.ndarray, np.ndarray] | None:
    """``_read_run`` for plain files; None when the run must be read line by line."""
    texts: list[bytes] = []
    counts: list[int] = []
    sizes: list[tuple[int, int]] = []
    for task in tasks:
        rows = _ROW.findall(folders.read_label(task).translate(_PLAIN_SPACE))
        if rows:
            sizes.append(folders.image_size(task))
            counts.append(len(rows))
            texts.append(b" ".join(rows))
    numbers = _plain_numbers(b" ".join(texts), 4 * sum(counts))
    if numbers is None:
        return None
    x1, y1, x2, y2 = numbers.reshape(-1, 4).T
    wide = np.repeat(np.array([s[0] for s in sizes], dtype=np.float64), counts)
    high = np.repeat(np.array([s[1] for s in sizes], dtype=np.float64), counts)
    with np.errstate(over="ignore", invalid="ignore"):
        ws, hs = (x2 - x1) / wide, (y2 - y1) / high
    if not (np.isfinite(ws).all() and np.isfinite(hs).all()):
        return None
    return ws, hs


def _plain_numbers(flat: bytes, expected: int) -> np.ndarray | None:
    """The numbers of a run, or None when they are not all plain decimals."""
    if not expected:
        return np.empty(0, dtype=np.float64)
    if not _PLAIN.fullmatch(flat):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            numbers = np.fromstring(flat, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    return numbers if numbers.size == expected else None


# -- the process pool ----------------------------------------------------------------------

_pool_tasks: list[Task] = []


def _init_worker(tasks: list[Task]) -> None:
    global _pool_tasks
    ignore_interrupts()
    _pool_tasks = tasks


def _read_slice(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | str:
    """In a worker: the boxes of tasks[start:stop], or the one-line error."""
    try:
        return _read_run(_pool_tasks[bounds[0]: bounds[1]])
    except InputError as exc:
        return str(exc)


def kitti_box_arrays(
    label_dirs: PathLike | Sequence[PathLike],
    image_dirs: PathLike | Sequence[PathLike],
    *,
    min_x: float = 0,
    min_y: float = 0,
    size_x: float,
    size_y: float,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The widths and heights (float64 arrays) of every KITTI box, as fractions of the size of
    its own image.

    ``label_dirs[i]`` pairs with ``image_dirs[i]`` (a single path is accepted for either);
    an image is found by the stem of its label file (the first of its image extensions in
    name order). Lines with fewer than 15 fields are ignored, as TAO does. A box is kept
    when ``w > min_x / size_x`` and ``h > min_y / size_y`` (``min_x``/``min_y`` in pixels of
    the ``size_x`` x ``size_y`` network input), so boxes without a positive size are always
    dropped. Boxes come in label file name order; an image header is only read for label
    files that hold a box. ``workers``: processes to read with (default: every usable core;
    small datasets are read in this process).

    Raises InputError naming the file (and line) for an unreadable directory, label file or
    image, a missing image, coordinates that are not numbers and boxes that are not finite.
    """
    if size_x <= 0 or size_y <= 0:
        raise ValueError(f"network size must be positive, not {size_x}x{size_y}")
    tasks = _tasks(as_dirs(label_dirs), as_dirs(image_dirs))
    workers = usable_cpus() if workers is None else workers
    if workers <= 1 or len(tasks) < _PARALLEL_FROM:
        ws, hs = _read_run(tasks)
    else:
        step = -(-len(tasks) // (workers * _CHUNKS_PER_WORKER))
        bounds = [(start, start + step) for start in range(0, len(tasks), step)]
        parts = []
        with imap_ordered(_read_slice, bounds, workers, initializer=_init_worker, initargs=(tasks,)) as results:
            for result in results:
                if isinstance(result, str):
                    raise InputError(result)
                parts.append(result)
        ws, hs = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    keep = (ws > min_x / size_x) & (hs > min_y / size_y)
    return ws[keep], hs[keep]


def load_kitti_boxes(label_dirs: PathLike | Sequence[PathLike], image_dirs: PathLike | Sequence[PathLike],
                     **options: Any) -> list[tuple[float, float]]:
    """The boxes of ``kitti_box_arrays`` (same arguments) as a list of (w, h)."""
    ws, hs = kitti_box_arrays(label_dirs, image_dirs, **options)
    return list(zip(ws.tolist(), hs.tolist()))
