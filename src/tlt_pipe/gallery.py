"""The report's inference grid: test images with the boxes a model found, each labelled with its class and score.

`samples` reads an inference stage's KITTI label files and finds the image each one belongs to; `grid` draws them
(pure: images and detections in, one PIL image out). The same images are picked for the TF model and the engine
(the first N names in order), so their grids compare side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from tlt_pipe.charts import COLOURS, font
from tlt_pipe.datasets.discover import IMAGE_EXTS
from tlt_pipe.datasets.kitti import parse_kitti

CELL = 256  # pixels per grid cell (the longer side of each image)
_CAPTION = 22


@dataclass(frozen=True)
class Detection:
    cls: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the image's pixels
    score: float | None


def read_detections(text: str) -> list[Detection]:
    """A KITTI label file as inference writes it: 15 fields and the confidence as a 16th."""
    objects, _ = parse_kitti(text)
    lines = text.splitlines()
    found = []
    for obj in objects:
        fields = lines[obj.line - 1].split()
        try:
            score = float(fields[15]) if len(fields) > 15 else None
        except ValueError:
            score = None
        found.append(Detection(obj.cls, (obj.x1, obj.y1, obj.x2, obj.y2), score))
    return found


def samples(results: Path, images: Path, count: int) -> list[tuple[Path, list[Detection]]]:
    """(image, detections) for the first `count` label files under results/**/labels whose image is in `images`."""
    by_stem = {}
    if images.is_dir():
        by_stem = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_EXTS}
    picked = []
    for label in sorted((p for p in results.rglob("*.txt") if p.parent.name == "labels"), key=lambda p: p.name):
        image = by_stem.get(label.stem)
        if image is None:
            continue
        try:
            picked.append((image, read_detections(label.read_text(encoding="utf-8", errors="replace"))))
        except OSError:
            continue
        if len(picked) == count:
            break
    return picked


def grid(shown: Sequence[tuple[str, Image.Image, Sequence[Detection]]], *, title: str, columns: int = 4) -> Image.Image:
    """One image: a title, then a cell per (name, image, detections), boxes and labels drawn in a colour per class."""
    columns = max(1, min(columns, len(shown) or 1))
    rows = max(1, math.ceil(len(shown) / columns))
    canvas = Image.new("RGB", (columns * CELL, 32 + rows * (CELL + _CAPTION)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 8), title, fill="#222222", font=font(16))
    classes = sorted({d.cls for _, _, found in shown for d in found})
    colour = {c: COLOURS[i % len(COLOURS)] for i, c in enumerate(classes)}
    if not shown:
        draw.text((8, 40), "no inference images with labels", fill="#888888", font=font(14))
    for index, (name, image, found) in enumerate(shown):
        left, top = (index % columns) * CELL, 32 + (index // columns) * (CELL + _CAPTION)
        scale = min(CELL / image.width, CELL / image.height)
        thumb = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        canvas.paste(thumb, (left, top))
        for det in found:
            x1, y1, x2, y2 = (left + det.box[0] * scale, top + det.box[1] * scale,
                              left + det.box[2] * scale, top + det.box[3] * scale)
            draw.rectangle((x1, y1, max(x1, x2), max(y1, y2)), outline=colour[det.cls], width=2)
            label = det.cls if det.score is None else f"{det.cls} {det.score:.2f}"
            draw.text((x1 + 2, max(top, y1 - 12)), label, fill=colour[det.cls], font=font(11))
        short = name if len(name) <= 26 else f"{name[:10]}...{name[-13:]}"  # fits the cell
        draw.text((left + 4, top + CELL + 4), f"{short}: {len(found)}", fill="#222222", font=font(12))
    return canvas
