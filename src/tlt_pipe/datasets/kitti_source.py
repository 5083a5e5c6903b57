"""A KITTI dataset as a source: validate, remap classes, resize and split it.

Accepts `images/` + `labels/`, KITTI's own `image_2/` + `label_2/`, and either of those
under `train/` and `val/` (honoured when both exist) or `training/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tlt_pipe.datasets import discover
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.kitti import parse_kitti
from tlt_pipe.datasets.naming import output_stem
from tlt_pipe.datasets.records import (
    HELD_OUT,
    IMAGE_WITHOUT_LABEL,
    LABEL_WITHOUT_IMAGE,
    SAME_STEM,
    Issue,
    Item,
    Obj,
    Problem,
    Skip,
)

IMAGE_DIRS = ("images", "image_2", "image")
LABEL_DIRS = ("labels", "label_2", "label")


def _pair_dirs(directory: Path) -> tuple[Path, Path] | None:
    images = discover.child_dir(directory, *IMAGE_DIRS)
    labels = discover.child_dir(directory, *LABEL_DIRS)
    return (images, labels) if images and labels else None


def scan(ctx: SourceContext) -> Iterator[Item | Issue | Skip]:
    src = ctx.src
    roots: list[tuple[Path, str | None]] = []
    if _pair_dirs(src):
        roots.append((src, None))
    else:
        for d in discover.subdirs(src):
            split = discover.split_of([d.name])
            if split and _pair_dirs(d):
                roots.append((d, split))
    for root, split in roots:
        if split == "test":
            images_dir = _pair_dirs(root)[0]
            for name in discover.files(images_dir):
                if discover.is_image(name):
                    yield Skip(HELD_OUT, ctx.where(discover.rel(images_dir / name, src)))
            continue
        images_dir, labels_dir = _pair_dirs(root)
        tag = root.name.lower() if split else ""
        for stem, image, label in discover.pair_by_stem(
            discover.files(images_dir), discover.files(labels_dir), ".txt"
        ):
            if image is None:
                yield Issue(LABEL_WITHOUT_IMAGE, ctx.where(discover.rel(labels_dir / label, src)),
                            "label file without an image")
                continue
            image_rel = discover.rel(images_dir / image, src)
            if not stem:
                yield Skip(SAME_STEM, ctx.where(image_rel))
            elif label is None:
                yield Skip(IMAGE_WITHOUT_LABEL, ctx.where(image_rel))
            else:
                yield Item(
                    image=image_rel,
                    label=discover.rel(labels_dir / label, src),
                    stem=output_stem(image_rel, tag, stem),
                    split=split,
                )


def load(ctx: SourceContext, item: Item, size: tuple[int, int]) -> tuple[list[Obj], list[Problem]]:
    return parse_kitti(ctx.read_text(item.label))
