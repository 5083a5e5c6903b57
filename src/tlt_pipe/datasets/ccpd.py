"""CCPD2019 and CCPD2020 (green plates): the annotation is the file name.

`area-tilt-bbox-vertices-plate-brightness-blur.jpg`, e.g.
`025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg`
is a plate in box (154,383)-(386,473) reading 皖AY339S. Files whose box field does not
parse (ccpd_np: no plate) are skipped and counted. Split lists (`split/` or `splits/`) and
CCPD2020's `train/ val/ test/` directories are honoured: train and val are kept, the rest
is held out. A file name found in two subsets is converted once when the files are the same
size (the copies are the same photo).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from tlt_pipe.datasets import discover
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.naming import output_stem
from tlt_pipe.datasets.options import normalise_subset
from tlt_pipe.datasets.records import (
    DUPLICATE,
    HELD_OUT,
    NO_PLATE,
    NOT_LISTED,
    Item,
    Obj,
    Problem,
    Skip,
    SkipImage,
    finite_number,
)

CLASS = "lpd"
PROVINCES = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学O"
ALPHABETS = "ABCDEFGHJKLMNPQRSTUVWXYZO"
ADS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789O"


def plate_text(indices: list[int]) -> str | None:
    """Character indices -> plate text ('O' entries mean no character); None if out of range."""
    chars = []
    for position, index in enumerate(indices):
        table = PROVINCES if position == 0 else ALPHABETS if position == 1 else ADS
        if not 0 <= index < len(table):
            return None
        if table[index] != "O":
            chars.append(table[index])
    return "".join(chars)


def _point(text: str) -> tuple[float, float]:
    """`x&y` as finite numbers (ValueError for nan or inf, which no box has)."""
    x, y = text.split("&")
    return finite_number(x), finite_number(y)


def parse_ccpd_name(stem: str) -> Obj | None:
    """The plate a CCPD file name describes, or None when the name has no box (no plate).

    Only the box is required; vertices, text, tilt, brightness and blur are kept when they
    parse and None otherwise.
    """
    fields = stem.split("-")
    if len(fields) < 3:
        return None
    try:
        corners = fields[2].split("_")
        if len(corners) != 2:
            return None
        (x1, y1), (x2, y2) = (_point(c) for c in corners)
    except ValueError:
        return None
    plate: dict = {"text": None, "vertices": None, "indices": None}
    if len(fields) >= 4:
        try:
            vertices = [list(_point(p)) for p in fields[3].split("_")]
            if len(vertices) == 4:
                plate["vertices"] = vertices
        except ValueError:
            pass
    if len(fields) >= 5:
        try:
            indices = [int(i) for i in fields[4].split("_")]
            plate["indices"] = indices
            plate["text"] = plate_text(indices)
        except ValueError:
            pass
    for name, position in (("area", 0), ("brightness", 5), ("blur", 6)):
        try:
            plate[name] = int(fields[position])
        except (IndexError, ValueError):
            plate[name] = None
    try:
        plate["tilt"] = [int(v) for v in fields[1].split("_")]
    except ValueError:
        plate["tilt"] = None
    return Obj(CLASS, min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), plate=plate)


def _split_lists(src: Path) -> dict[str, str] | None:
    """relative path -> "train" / "val" / "test" from split/ or splits/, or None."""
    directory = discover.child_dir(src, "splits", "split")
    if directory is None:
        return None
    listed: dict[str, str] = {}
    found = False
    for name in discover.files(directory):
        if not name.lower().endswith(".txt"):
            continue
        found = True
        base = name[:-4].lower()
        split = "train" if base == "train" else "val" if base in ("val", "valid") else "test"
        with open(directory / name, encoding="utf-8-sig", errors="replace") as handle:
            for line in handle:
                entry = line.strip().replace("\\", "/")
                if not entry:
                    continue
                while entry.startswith("./"):
                    entry = entry[2:]
                # train/val win over test lists when a file is listed twice
                if listed.get(entry) not in ("train", "val"):
                    listed[entry] = split
    return listed if found else None


def _image_dirs(src: Path) -> Iterator[tuple[Path, str, str | None]]:
    """(directory, subset, split of the directory or None) for every image directory."""
    tops = [d for d in discover.subdirs(src) if d.name.lower().startswith("ccpd")]
    if not tops:
        tops = [src]
    for top in tops:
        group = normalise_subset(top.name)
        split_dirs = [d for d in discover.subdirs(top) if discover.split_of([d.name])]
        if split_dirs:
            for d in split_dirs:
                yield d, group, discover.split_of([d.name])
        else:
            yield top, group, None


_RANK = {"train": 0, "val": 1, None: 2}


def scan(ctx: SourceContext) -> Iterator[Item | Skip]:
    src = ctx.src
    listed = _split_lists(src)
    # name -> [(rel, group, split, split dir name)]; a name in two subsets is checked below
    found: dict[str, list[tuple[str, str, str | None, str]]] = {}
    for directory, group, dir_split in _image_dirs(src):
        if not ctx.options.wants(group):
            continue
        for name in discover.files(directory):
            if not discover.is_image(name):
                continue
            rel = discover.rel(directory / name, src)
            if group == "np":
                yield Skip(NO_PLATE, ctx.where(rel))
                continue
            split = dir_split
            if split is None and listed is not None:
                split = listed.get(rel)
                if split is None:
                    yield Skip(NOT_LISTED, ctx.where(rel))
                    continue
            if split == "test":
                yield Skip(HELD_OUT, ctx.where(rel))
                continue
            tag = directory.name.lower() if dir_split else ""
            found.setdefault(name, []).append((rel, group, split, tag))
    for name in sorted(found):
        entries = found[name]
        if len(entries) > 1:
            entries = yield from _dedupe(ctx, entries)
        for rel, group, split, tag in entries:
            yield Item(
                image=rel,
                label=None,
                stem=output_stem(rel, group, tag, os.path.splitext(name)[0]),
                split=split,
                group=group,
            )


def _dedupe(ctx: SourceContext, entries):
    """Keep one of each set of same-size copies (train before val before unsplit)."""
    by_size: dict[int, list] = {}
    for entry in entries:
        try:
            size = (ctx.src / entry[0]).stat().st_size
        except OSError:
            size = -1
        by_size.setdefault(size, []).append(entry)
    kept = []
    for copies in by_size.values():
        copies.sort(key=lambda e: (_RANK.get(e[2], 2), e[0]))
        kept.append(copies[0])
        for rel, *_ in copies[1:]:
            yield Skip(DUPLICATE, ctx.where(rel))
    return sorted(kept)


def load(ctx: SourceContext, item: Item, size: tuple[int, int]) -> tuple[list[Obj], list[Problem]]:
    obj = parse_ccpd_name(os.path.splitext(os.path.basename(item.image))[0])
    if obj is None:
        raise SkipImage(NO_PLATE)
    return [obj], []
