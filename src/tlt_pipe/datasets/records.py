"""The small value types every converter shares.

An `Item` is what scanning a source tree yields for one image (names only, so a list of
them stays small). A parser turns label text into `Obj` records and `Problem`s (a line
number and a reason); the worker attaches the file name to make an `Issue`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Reasons for bad input. Each is counted in the report with file:line examples, and in
# strict mode the first one is an error.
MALFORMED = "malformed line"
NON_NUMERIC = "non-numeric field"
BAD_FILE = "unparsable label file"
BAD_NAME = "unparsable file name"
UNKNOWN_CLASS = "unknown class"
MISSING_IMAGE = "missing image"
LABEL_WITHOUT_IMAGE = "label without image"
UNREADABLE = "unreadable image"
UNLISTABLE = "folder that cannot be listed"
BAD_CLASS = "class name with a control character"  # or bytes that are not UTF-8

BAD_INPUT = frozenset(
    {MALFORMED, NON_NUMERIC, BAD_FILE, BAD_NAME, UNKNOWN_CLASS, MISSING_IMAGE,
     LABEL_WITHOUT_IMAGE, UNREADABLE, UNLISTABLE, BAD_CLASS}
)

# Objects dropped by normal processing (counted, never an error).
DEGENERATE = "degenerate box"
DONTCARE = "dontcare region"

# Whole images left out on purpose (counted, never an error).
NO_PLATE = "no plate (ccpd_np, or no box in the file name)"
DUPLICATE = "duplicate of a file in another subset"
HELD_OUT = "held out (test split)"
NOT_LISTED = "not in the train/val split lists"
IMAGE_WITHOUT_LABEL = "image without label file"
SAME_STEM = "another image has the same name"


class SkipImage(Exception):
    """Raised by a label loader: leave this image out on purpose (reason is a skip reason)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Item(NamedTuple):
    """One image to convert, as found by scanning. Paths are relative to the source root."""

    image: str
    label: str | None  # None when the annotation is not a separate file (CCPD)
    stem: str  # unique output stem
    split: str | None = None  # "train"/"val" when the source decides, else None
    group: str = ""  # subset or region, for selection and reporting


@dataclass(slots=True)
class Obj:
    """One annotated object in source pixel coordinates (0-based)."""

    cls: str
    x1: float
    y1: float
    x2: float
    y2: float
    line: int = 0  # 1-based line in the label file, 0 when not line-based
    truncation: float = 0.0
    occlusion: int = 0
    plate: dict[str, Any] | None = None  # plate type/text/vertices for the side file


class Problem(NamedTuple):
    """A parser's complaint about its input: which line, why, and what it saw."""

    line: int
    reason: str
    detail: str
    value: str = ""  # the offending value where it matters (the unknown class name)


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem located in a file (`where` is `path` or `path:line`)."""

    reason: str
    where: str
    detail: str

    @property
    def bad_input(self) -> bool:
        return self.reason in BAD_INPUT

    def message(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass(slots=True)
class Skip:
    """An image left out on purpose (no plate, held-out split, duplicate...)."""

    reason: str
    where: str


@dataclass(slots=True)
class ItemResult:
    """What a worker did with one Item; small, so it crosses the process boundary cheaply."""

    stem: str
    ok: bool  # image and label written
    split: str  # the fold the files were written to
    ext: str = ""
    size: tuple[int, int] | None = None  # source size
    classes: tuple[str, ...] = ()  # training class of every object written
    issues: list[Issue] = field(default_factory=list)
    dropped: list[Issue] = field(default_factory=list)  # degenerate boxes, dontcare
    clamped: list[str] = field(default_factory=list)  # where
    unknown: list[str] = field(default_factory=list)  # unknown source class names
    plates: list[str] = field(default_factory=list)  # JSON objects, without image/label paths
    skip: Skip | None = None
    # for a layout whose labels the driver writes (COCO): (output size, ((class, x1, y1, x2, y2), ...))
    annotation: tuple | None = None


def finite_number(text: str) -> float:
    """A label field as a finite float; ValueError for text, nan and inf."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def is_finite_number(text: str) -> bool:
    try:
        finite_number(text)
    except ValueError:
        return False
    return True


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ASCII_SPACE = re.compile(r"[ \t\v\f]+")


def text_lines(text: str) -> list[str]:
    """The lines of a label or names file, broken at \\n, \\r\\n and \\r only. str.splitlines also breaks at
    U+0085, U+2028, form feeds and \\x1c-\\x1e, which may sit inside a class name: every class after it
    would shift by one."""
    lines = _LINE_BREAK.split(text)
    if lines and not lines[-1]:
        lines.pop()
    return lines


def fields_of(line: str) -> list[str]:
    """A line's fields, split at ASCII blanks only (str.split also splits at U+0085 or U+3000 inside a
    class name, making a class of each piece)."""
    return [f for f in _ASCII_SPACE.split(line.strip(" \t\v\f\r\n")) if f]
