"""CRPD (Chinese Road Plate Dataset): quadrilateral plate labels, one line per plate.

Layout `CRPD_{single,double,multi}/{train,val,test}/{images,labels}/`. A line is
`x1 y1 x2 y2 x3 y3 x4 y4 type content` (spaces or commas; content may be missing). The
corner order varies between files, so the box is min/max over the four corners. The
source's train and val parts are pooled and split afresh (the test part is held out);
subset and split go into the output name because stems repeat between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from tlt_pipe.datasets import discover
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.naming import output_stem
from tlt_pipe.datasets.options import normalise_subset
from tlt_pipe.datasets.records import (
    HELD_OUT,
    IMAGE_WITHOUT_LABEL,
    LABEL_WITHOUT_IMAGE,
    MALFORMED,
    NON_NUMERIC,
    SAME_STEM,
    Issue,
    Item,
    Obj,
    Problem,
    Skip,
    text_lines,
)

CLASS = "lpd"
PLATE_TYPES = {0: "blue", 1: "yellow single-line", 2: "yellow double-line", 3: "white"}
_SEPARATORS = re.compile(r"[ \t\v\f,，]+")  # ASCII blanks and commas, as fields_of


def parse_crpd(text: str) -> tuple[list[Obj], list[Problem]]:
    """Parse a CRPD label file (a BOM, blank lines and CRLF are fine)."""
    objects: list[Obj] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text_lines(text.lstrip("\ufeff")), start=1):
        fields = [f for f in _SEPARATORS.split(raw.strip(" \t\v\f\r\n")) if f]
        if not fields:
            continue
        if len(fields) < 8:
            problems.append(
                Problem(number, MALFORMED, f"expected 8 corner numbers, got {len(fields)} fields")
            )
            continue
        corners: list[float] = []
        for field in fields[:8]:
            try:
                value = float(field)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                break
            corners.append(value)
        if len(corners) < 8:
            problems.append(
                Problem(number, NON_NUMERIC, f"expected 8 corner numbers, got {fields[len(corners)]!r}")
            )
            continue
        plate_type: int | None = None
        if len(fields) > 8:
            try:
                plate_type = int(fields[8])
            except ValueError:
                problems.append(
                    Problem(number, NON_NUMERIC, f"expected a plate type 0-3, got {fields[8]!r}")
                )
                continue
            if plate_type not in PLATE_TYPES:
                problems.append(Problem(number, MALFORMED, f"expected a plate type 0-3, got {fields[8]!r}"))
                continue
        content = " ".join(fields[9:]) or None
        xs, ys = corners[0::2], corners[1::2]
        objects.append(
            Obj(
                CLASS,
                min(xs),
                min(ys),
                max(xs),
                max(ys),
                line=number,
                plate={
                    "type": plate_type,
                    "text": content,
                    "corners": [[x, y] for x, y in zip(xs, ys)],
                },
            )
        )
    return objects, problems


def scan(ctx: SourceContext) -> Iterator[Item | Issue | Skip]:
    """Every image of the selected subsets, as Items (and the problems found on the way)."""
    src = ctx.src
    if discover.child_dir(src, "images") and discover.child_dir(src, "labels"):
        # SRC is one split directory: take it whole, whatever its name.
        yield from _scan_split(ctx, src, "", "")
        return
    if any(discover.split_of([d.name]) for d in discover.subdirs(src)):
        subset_dirs = [src]
    else:  # each folder with train/val/test folders is a subset; one that cannot be listed is reported
        subset_dirs = []
        for d in discover.subdirs(src):
            try:
                if any(discover.split_of([s.name]) for s in discover.subdirs(d)):
                    subset_dirs.append(d)
            except discover.Unlistable as error:
                yield ctx.unlisted(error, d.name)
    for subset_dir in subset_dirs:
        group = normalise_subset(subset_dir.name) if subset_dir != src else ""
        if group and not ctx.options.wants(group):
            continue
        for split_dir in discover.subdirs(subset_dir):
            split = discover.split_of([split_dir.name])
            if split is None:
                continue
            if split == "test":
                images_dir = discover.child_dir(split_dir, "images") or split_dir
                for name in discover.files(images_dir):
                    if discover.is_image(name):
                        yield Skip(HELD_OUT, ctx.where(discover.rel(images_dir / name, src)))
                continue
            yield from _scan_split(ctx, split_dir, group, split_dir.name.lower())


def _scan_split(ctx: SourceContext, split_dir, group: str, split_name: str) -> Iterator[Item | Issue | Skip]:
    images_dir = discover.child_dir(split_dir, "images") or split_dir
    labels_dir = discover.child_dir(split_dir, "labels") or split_dir
    images_rel, labels_rel = discover.rel(images_dir, ctx.src), discover.rel(labels_dir, ctx.src)
    for stem, image, label in discover.pair_by_stem(
        discover.files(images_dir), discover.files(labels_dir), ".txt"
    ):
        if image is None:
            rel = discover.join(labels_rel, label)
            yield Issue(LABEL_WITHOUT_IMAGE, ctx.where(rel), "label file without an image")
            continue
        image_rel = discover.join(images_rel, image)
        if not stem:
            yield Skip(SAME_STEM, ctx.where(image_rel))
            continue
        if label is None:
            yield Skip(IMAGE_WITHOUT_LABEL, ctx.where(image_rel))
            continue
        yield Item(
            image=image_rel,
            label=discover.join(labels_rel, label),
            stem=output_stem(image_rel, group, split_name, stem),
            split=None,
            group=group,
        )


def load(ctx: SourceContext, item: Item, size: tuple[int, int]) -> tuple[list[Obj], list[Problem]]:
    return parse_crpd(ctx.read_text(item.label))
