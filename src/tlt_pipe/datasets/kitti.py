"""KITTI label lines as TAO reads them: writing, reading, clamping, the degenerate rule."""

from __future__ import annotations

import re

from tlt_pipe.datasets.records import (MALFORMED, NON_NUMERIC, Obj, Problem, fields_of, finite_number,
                                        is_finite_number, text_lines)

FIELDS = 15
_SPACE = re.compile(r"\s+")


def class_name(name: str) -> str:
    """A class name TAO can read: lower case (TAO lower-cases), no whitespace."""
    return _SPACE.sub("_", name.strip()).lower()


def format_line(
    cls: str, x1: float, y1: float, x2: float, y2: float, truncation: float = 0.0, occlusion: int = 0
) -> str:
    """One 15-field KITTI line; occlusion is an integer (TAO's loaders call int() on it)."""
    return (
        f"{class_name(cls)} {truncation:.2f} {int(occlusion)} 0.00 "
        f"{x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00"
    )


def clamp(
    box: tuple[float, float, float, float], width: float, height: float
) -> tuple[tuple[float, float, float, float], bool]:
    """Clamp a box to the image [0, width] x [0, height]; also return whether it moved."""
    x1, y1, x2, y2 = box
    out = (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )
    return out, any(abs(a - b) > 1e-6 for a, b in zip(out, box))


def degenerate(box: tuple[float, float, float, float]) -> bool:
    """TAO drops boxes with int(x1) >= int(x2); the same for y. Written boxes must pass."""
    x1, y1, x2, y2 = box
    return int(x1) >= int(x2) or int(y1) >= int(y2)


def parse_kitti(text: str) -> tuple[list[Obj], list[Problem]]:
    """Parse a KITTI label file: 15 fields per line (a 16th, the score, is ignored)."""
    objects: list[Obj] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text_lines(text), start=1):
        fields = fields_of(raw)
        if not fields:
            continue
        if len(fields) < FIELDS or len(fields) > FIELDS + 1:
            problems.append(
                Problem(number, MALFORMED, f"expected {FIELDS} KITTI fields, got {len(fields)}")
            )
            continue
        try:
            values = [finite_number(v) for v in fields[1:FIELDS]]
        except ValueError:
            bad = next(v for v in fields[1:FIELDS] if not is_finite_number(v))
            problems.append(Problem(number, NON_NUMERIC, f"expected numbers after the class, got {bad!r}"))
            continue
        truncation, occlusion = values[0], values[1]
        if not (-1 <= truncation <= 1 and -1 <= occlusion <= 3):  # KITTI: -1 (DontCare) or 0..1 and 0..3
            problems.append(Problem(number, MALFORMED, f"truncation {fields[1]} or occlusion {fields[2]} outside "
                                                       "KITTI's -1..1 and -1..3"))
            continue
        x1, y1, x2, y2 = values[3:7]
        objects.append(
            Obj(fields[0], x1, y1, x2, y2, line=number, truncation=truncation, occlusion=int(occlusion))
        )
    return objects, problems

