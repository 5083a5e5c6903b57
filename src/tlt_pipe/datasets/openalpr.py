"""OpenALPR benchmark: `benchmarks/endtoend/<region>/<name>.jpg` plus `<name>.txt` holding a
TAB-separated line `file x y w h plate` (x, y top-left; w, h size in pixels).

The region directory (us, eu, br...) is the subset. The plate text goes to the side file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import PurePosixPath

from tlt_pipe.datasets import discover
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.naming import output_stem
from tlt_pipe.datasets.records import (
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
    fields_of,
    text_lines,
)

CLASS = "lpd"


def parse_openalpr(text: str) -> tuple[list[Obj], list[Problem]]:
    objects: list[Obj] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text_lines(text.lstrip("\ufeff")), start=1):
        if not raw.strip():
            continue
        fields = [f.strip() for f in raw.strip().split("\t")]
        if len(fields) < 5:
            fields = fields_of(raw)
        if len(fields) < 5:
            problems.append(Problem(number, MALFORMED, f"expected `file x y w h plate`, got {len(fields)} fields"))
            continue
        values = []
        for field in fields[1:5]:
            try:
                value = float(field)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                problems.append(Problem(number, NON_NUMERIC, f"expected x y w h numbers, got {field!r}"))
                break
            values.append(value)
        if len(values) < 4:
            continue
        x, y, w, h = values
        plate = " ".join(fields[5:]).strip() or None
        objects.append(Obj(CLASS, x, y, x + w, y + h, line=number, plate={"text": plate}))
    return objects, problems


def scan(ctx: SourceContext) -> Iterator[Item | Issue | Skip]:
    src = ctx.src
    by_dir: dict[str, tuple[list[str], list[str]]] = {}
    for path in discover.walk_files(src):
        if isinstance(path, discover.Unlistable):  # reported, unless it is a region --subsets names
            yield ctx.unlisted(path, path.path.name)
            continue
        rel = discover.rel(path, src)
        parent = str(PurePosixPath(rel).parent)
        if discover.is_image(path.name):
            by_dir.setdefault(parent, ([], []))[0].append(path.name)
        elif path.suffix.lower() == ".txt":
            by_dir.setdefault(parent, ([], []))[1].append(path.name)
    for parent in sorted(by_dir):
        image_names, text_names = by_dir[parent]
        if not image_names:
            continue  # READMEs and lists, not labels
        group = PurePosixPath(parent).name if parent != "." else ""
        if group and not ctx.options.wants(group):
            continue
        base = "" if parent == "." else parent + "/"
        for stem, image, label in discover.pair_by_stem(image_names, text_names, ".txt"):
            if image is None:
                yield Issue(LABEL_WITHOUT_IMAGE, ctx.where(base + label), "label file without an image")
            elif not stem:
                yield Skip(SAME_STEM, ctx.where(base + image))
            elif label is None:
                yield Skip(IMAGE_WITHOUT_LABEL, ctx.where(base + image))
            else:
                yield Item(
                    image=base + image,
                    label=base + label,
                    stem=output_stem(base + image, group, stem),
                    group=group,
                )


def load(ctx: SourceContext, item: Item, size: tuple[int, int]) -> tuple[list[Obj], list[Problem]]:
    return parse_openalpr(ctx.read_text(item.label))
