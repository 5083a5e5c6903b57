"""YOLO / darknet: `class_id cx cy w h` per line, normalised by the image size.

Class names come from `obj.names` (one per line) or an Ultralytics `data.yaml` (`names:`
as a list or an index -> name mapping). Labels live in a `labels/` tree mirroring `images/`
or next to the images. An image without a label file has no objects (YOLO's convention).
`train/` and `val|valid/` parts of the tree are honoured when both exist; `test/` is held out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from tlt_pipe import yamldoc
from tlt_pipe.datasets import discover
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.naming import output_stem
from tlt_pipe.datasets.options import check_class_names
from tlt_pipe.datasets.records import (
    HELD_OUT,
    LABEL_WITHOUT_IMAGE,
    MALFORMED,
    NON_NUMERIC,
    SAME_STEM,
    UNKNOWN_CLASS,
    Issue,
    Item,
    Obj,
    Problem,
    Skip,
    fields_of,
    finite_number,
    is_finite_number,
    text_lines,
)
from tlt_pipe.errors import ConfigError
from tlt_pipe.regular_file import read_text

NAMES_FILES = ("data.yaml", "dataset.yaml", "data.yml", "obj.names", "classes.names", "classes.txt")


def load_names(path: Path) -> tuple[str, ...]:
    """Class names from obj.names or a data.yaml; index = YOLO class id."""
    try:
        text = read_text(path, "utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read class names: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the class names as UTF-8") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        _, data = yamldoc.read(text, str(path))
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            by_id = {_class_id(key): name for key, name in names.items()}
            if set(by_id) != set(range(len(names))):
                raise ConfigError(f"{path}: names: expected ids 0..{len(names) - 1}")
            names = [by_id[i] for i in range(len(names))]
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{path}: expected a `names:` list of class names")
        for index, name in enumerate(names):
            if isinstance(name, bool) or not isinstance(name, (str, int)) or not str(name).strip():
                unquoted = name is None or isinstance(name, bool)
                hint = " (YAML reads yes, no, on, off and null so: quote the name)" if unquoted else ""
                raise ConfigError(f"{path}: names: class {index} is {yamldoc.short(repr(name), 40)}, not a class "
                                  f"name{hint}")
        names = tuple(str(n).strip() for n in names)
        check_class_names(names, f"{path}: names")
        return names
    lines = [line.strip(" \t") for line in text_lines(text)]
    while lines and not lines[-1]:
        lines.pop()
    if not lines or not all(lines):
        raise ConfigError(f"{path}: expected one class name per line (no blank lines)")
    check_class_names(lines, str(path))
    return tuple(lines)


def _class_id(key) -> int | str:
    """A data.yaml `names:` key as a class id (0, "0"); anything else is kept as it is, to be refused."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) < 10 and str(int(key)) == key:
        return int(key)
    return str(key)


def find_names(src: Path) -> Path | None:
    for name in NAMES_FILES:
        if (src / name).is_file():
            return src / name
    candidates = [src / n for n in discover.files(src) if n.lower().endswith(".names")]
    return candidates[0] if candidates else None


def parse_yolo(text: str, names: tuple[str, ...], width: int, height: int) -> tuple[list[Obj], list[Problem]]:
    """YOLO lines -> pixel boxes with the real image size (polygons -> their bounding box)."""
    objects: list[Obj] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text_lines(text.lstrip("\ufeff")), start=1):
        fields = fields_of(raw)
        if not fields:
            continue
        if len(fields) < 5:
            problems.append(Problem(number, MALFORMED, f"expected `class cx cy w h`, got {len(fields)} fields"))
            continue
        try:
            class_value = finite_number(fields[0])
            if class_value != int(class_value):
                raise ValueError(fields[0])
            class_id = int(class_value)
        except ValueError:
            problems.append(Problem(number, NON_NUMERIC, f"expected an integer class id, got {fields[0]!r}"))
            continue
        try:
            values = [finite_number(v) for v in fields[1:]]
        except ValueError:
            bad = next(v for v in fields[1:] if not is_finite_number(v))
            problems.append(Problem(number, NON_NUMERIC, f"expected normalised numbers, got {bad!r}"))
            continue
        if not 0 <= class_id < len(names):
            problems.append(
                Problem(
                    number, UNKNOWN_CLASS, f"class id {class_id} is not in the {len(names)} class names",
                    f"id {class_id}",
                )
            )
            continue
        if len(values) in (4, 5):  # a box (and a confidence, ignored)
            cx, cy, w, h = values[:4]
            x1, x2 = (cx - w / 2) * width, (cx + w / 2) * width
            y1, y2 = (cy - h / 2) * height, (cy + h / 2) * height
        elif len(values) % 2 == 0 and len(values) >= 6:  # a segmentation polygon
            xs, ys = values[0::2], values[1::2]
            x1, x2 = min(xs) * width, max(xs) * width
            y1, y2 = min(ys) * height, max(ys) * height
        else:
            problems.append(Problem(number, MALFORMED, f"expected `class cx cy w h`, got {len(fields)} fields"))
            continue
        objects.append(Obj(names[class_id], x1, y1, x2, y2, line=number))
    return objects, problems


def format_yolo(class_id: int, box: tuple[float, float, float, float], width: int, height: int) -> str:
    """A pixel box (x1, y1, x2, y2) as a YOLO line normalised by the image size."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    w, h = (x2 - x1) / width, (y2 - y1) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"



def _label_candidates(image_rel: str) -> list[str]:
    path = PurePosixPath(image_rel)
    parts = list(path.parts)
    candidates = []
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() == "images":
            mirrored = [*parts[:i], "labels" if parts[i] == "images" else "Labels", *parts[i + 1:]]
            candidates.append(str(PurePosixPath(*mirrored).with_suffix(".txt")))
            break
    candidates.append(str(path.with_suffix(".txt")))
    return candidates


def scan(ctx: SourceContext) -> Iterator[Item | Issue | Skip]:
    src = ctx.src
    images: list[str] = []
    texts: set[str] = set()
    image_dirs: set[str] = set()
    for path in discover.walk_files(src):
        if isinstance(path, discover.Unlistable):
            yield _unlisted(ctx, path)
            continue
        rel = discover.rel(path, src)
        if discover.is_image(path.name):
            images.append(rel)
            image_dirs.add(str(PurePosixPath(rel).parent))
        elif path.suffix.lower() == ".txt":
            texts.add(rel)
    used: set[str] = set()
    seen_stems: set[str] = set()
    for rel in images:
        parts = PurePosixPath(rel).parts
        group = parts[0] if len(parts) > 1 and ctx.options.subsets else ""
        if group and not ctx.options.wants(group):
            used.update(c for c in _label_candidates(rel) if c in texts)  # left out with its image
            continue
        label = next((c for c in _label_candidates(rel) if c in texts), None)
        if label is not None:
            if label in used:  # a.jpg and a.png sharing a.txt
                yield Skip(SAME_STEM, ctx.where(rel))
                continue
            used.add(label)
        split = discover.split_of(parts[:-1])
        if split == "test":
            yield Skip(HELD_OUT, ctx.where(rel))
            continue
        stem_key = str(PurePosixPath(rel).with_suffix(""))
        if stem_key in seen_stems:
            yield Skip(SAME_STEM, ctx.where(rel))
            continue
        seen_stems.add(stem_key)
        yield Item(
            image=rel,
            label=label,
            stem=output_stem(rel, split or "", PurePosixPath(rel).stem),
            split=split,
            group=group,
        )
    for rel in sorted(texts - used):
        parts = PurePosixPath(rel).parts
        if ctx.options.subsets and len(parts) > 1 and not ctx.options.wants(parts[0]):
            continue  # a subset --subsets leaves out
        in_labels = any(p.lower() == "labels" for p in parts[:-1])
        if not in_labels and parts[-1].lower() in _NOT_LABELS:
            continue
        if in_labels or str(PurePosixPath(rel).parent) in image_dirs:
            if discover.split_of(parts[:-1]) == "test":
                continue
            yield Issue(LABEL_WITHOUT_IMAGE, ctx.where(rel), "label file without an image")


_NOT_LABELS = {"classes.txt", "train.txt", "val.txt", "valid.txt", "test.txt", "readme.txt"}


def _unlisted(ctx: SourceContext, error: discover.Unlistable) -> Issue:
    """A folder below the source root that cannot be listed: reported, or the error itself when it is (or is
    in) an images/ or labels/ tree or a subset --subsets names (its images would be lost, or read as
    having no objects)."""
    parts = PurePosixPath(discover.rel(error.path, ctx.src)).parts
    if any(p.lower() in ("images", "labels") for p in parts):
        raise error
    return ctx.unlisted(error, parts[0])


def prepare(ctx: SourceContext) -> SourceContext:
    """Resolve the class names (--names, or a names file at the source root)."""
    path = ctx.options.names_file or find_names(ctx.src)
    if path is None:
        raise ConfigError(
            f"{ctx.display}: no YOLO class names found: pass --names obj.names or data.yaml"
        )
    return dataclasses.replace(ctx, names=load_names(path))


def load(ctx: SourceContext, item: Item, size: tuple[int, int]) -> tuple[list[Obj], list[Problem]]:
    if item.label is None:
        return [], []
    return parse_yolo(ctx.read_text(item.label), ctx.names, size[0], size[1])
