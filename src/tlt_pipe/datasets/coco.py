"""COCO instances JSON for TAO's PyTorch detectors (RT-DETR, DINO): one annotations.json a fold.

The ids are stable, so the same conversion writes the same bytes:
- categories 1..N in the order of the conversion's class list: the class map's target names,
  sorted, or without a map the classes found, sorted (the order of VOC's labels.txt). Both
  folds get the whole list, also where a class has no box in one of them;
- images 1..M in file-name order within the fold;
- annotations 1..K in image-id order, then in the order of the objects in the image (the
  order of the lines of the KITTI label file the same conversion writes with --to kitti).

A box is the KITTI output's box (its corners to 0.01 px, as a KITTI label line holds them) as
[x, y, width, height] in output pixels; area is width * height.

The driver keeps a fold's images in compact columns (FoldRecords) and streams the file,
one entry a line, to a temporary name that replaces annotations.json only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO


class ImageRecord(NamedTuple):
    """One converted image: its file name in the fold's images/, its output size, its boxes."""

    file_name: str
    width: int
    height: int
    objects: tuple[tuple[str, float, float, float, float], ...] = ()  # (class, x1, y1, x2, y2)


def _as_written(value: float) -> float:
    """A coordinate as a KITTI label line holds it (two decimals; never -0.0)."""
    return float(f"{value:.2f}") + 0.0


def bbox(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """Corners -> COCO's [x, y, width, height], to 0.01 px like the KITTI output."""
    x1, y1, x2, y2 = (_as_written(v) for v in (x1, y1, x2, y2))
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]


def category_entries(categories: Sequence[str]) -> list[dict]:
    if len(set(categories)) != len(categories):
        raise ValueError(f"categories: a class name twice in {list(categories)!r}")
    return [{"id": number, "name": name} for number, name in enumerate(categories, start=1)]


def image_entries(records: Iterable[ImageRecord]) -> Iterator[dict]:
    """Image entries, ids from 1; records must come in strictly increasing file-name order."""
    previous = None
    for image_id, record in enumerate(records, start=1):
        if previous is not None and record.file_name <= previous:
            raise ValueError(f"images out of file-name order: {record.file_name!r} after {previous!r}")
        previous = record.file_name
        yield {"id": image_id, "file_name": record.file_name, "width": record.width, "height": record.height}


def annotation_entries(records: Iterable[ImageRecord], categories: Sequence[str]) -> Iterator[dict]:
    """Annotation entries, ids from 1, for records in the order image_entries numbered them."""
    category_ids = {name: number for number, name in enumerate(categories, start=1)}
    annotation_id = 0
    for image_id, record in enumerate(records, start=1):
        for cls, x1, y1, x2, y2 in record.objects:
            category_id = category_ids.get(cls)
            if category_id is None:
                raise ValueError(f"{record.file_name}: class {cls!r} is not one of the categories")
            annotation_id += 1
            box = bbox(x1, y1, x2, y2)
            yield {"id": annotation_id, "image_id": image_id, "category_id": category_id, "bbox": box,
                   "area": round(box[2] * box[3], 4), "iscrowd": 0}


def coco_document(records: Iterable[ImageRecord], categories: Sequence[str]) -> dict:
    """The whole COCO document for records in any order (write_coco writes the same, streaming)."""
    ordered = sorted(records, key=lambda record: record.file_name)
    return {
        "images": list(image_entries(ordered)),
        "annotations": list(annotation_entries(ordered, categories)),
        "categories": category_entries(categories),
    }


def write_coco(path: Path, records: Iterable[ImageRecord], categories: Sequence[str]) -> None:
    """Write the document to path atomically (a temporary file, then os.replace).

    records is read twice (images, then annotations) and must be in file-name order, as
    FoldRecords iterates; the file holds one entry a line.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write('{"images":[')
            _write_entries(handle, image_entries(records))
            handle.write(',\n"annotations":[')
            _write_entries(handle, annotation_entries(records, categories))
            handle.write(',\n"categories":[')
            _write_entries(handle, category_entries(categories))
            handle.write("}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _write_entries(handle: TextIO, entries: Iterable[dict]) -> None:
    """The entries of a list that is already open, one a line, then its closing bracket."""
    separator = "\n"
    encode = _ENCODER.encode
    for entry in entries:
        handle.write(separator + encode(entry))
        separator = ",\n"
    handle.write("\n]")


class FoldRecords:
    """The images of one fold in compact columns; iterating yields ImageRecords in file-name order.

    Per image it keeps the name, two sizes and where its boxes end; per box a reference to a
    shared class name and four numbers, so a fold of 300,000 images stays a few tens of MB.
    """

    def __init__(self) -> None:
        self._names: list[str] = []
        self._sizes = array("L")  # width, height per image
        self._ends = array("Q")  # per image, one past its last box
        self._classes: list[str] = []  # per box
        self._corners = array("d")  # x1, y1, x2, y2 per box
        self._shared: dict[str, str] = {}
        self._order: list[int] | None = None

    def add(self, file_name: str, size: tuple[int, int], objects: Iterable[Sequence]) -> None:
        """objects: (class, x1, y1, x2, y2) in output pixels."""
        self._names.append(file_name)
        self._sizes.extend(size)
        for cls, x1, y1, x2, y2 in objects:
            self._classes.append(self._shared.setdefault(cls, cls))
            self._corners.extend((x1, y1, x2, y2))
        self._ends.append(len(self._classes))
        self._order = None

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[ImageRecord]:
        if self._order is None:
            self._order = sorted(range(len(self._names)), key=self._names.__getitem__)
        names, sizes, ends, classes, corners = self._names, self._sizes, self._ends, self._classes, self._corners
        for index in self._order:
            start = ends[index - 1] if index else 0
            objects = tuple((classes[b], *corners[4 * b:4 * b + 4]) for b in range(start, ends[index]))
            yield ImageRecord(names[index], sizes[2 * index], sizes[2 * index + 1], objects)
