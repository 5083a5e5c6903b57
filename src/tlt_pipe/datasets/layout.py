"""Output layouts: where images and labels go and what a label file contains.

KITTI (what TAO reads): `train/{images,labels}/`, `val/{images,labels}/`. Workers write
every image to the fold the source decided, or to train/ when the split is decided later;
the driver then moves the validation images (a rename, same filesystem).

VOC for the PyTorch SSD trainer: `Annotations/`, `JPEGImages/`, `labels.txt` and
`ImageSets/Main/{train,val,trainval,test}.txt`. That trainer trains on trainval.txt and
validates on test.txt, so trainval.txt lists the training fold and test.txt the
validation fold (train.txt and val.txt hold the same folds): the validation images are
never trained on.

COCO for TAO's PyTorch detectors (RT-DETR, DINO): `train/images/`, `val/images/` placed as
for KITTI, and `train/annotations.json`, `val/annotations.json` (datasets/coco.py). Workers
send each image's boxes back to the driver, which writes both files at the end. Class names
follow the KITTI rule, so the folds and the names are the ones `--to kitti` gives.

The targets are options.TARGETS; each has its class here (`name`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from tlt_pipe.datasets import coco, kitti
from tlt_pipe.datasets.voc import format_voc

FOLDS = ("train", "val")


class _LabelFiles:
    """A label file an image, written by the worker (label_rel and label_text say where and what)."""

    def write_labels(self, root: str, fold: str, stem: str, objects, size: tuple[int, int], image_name: str) -> None:
        """objects: (class, x1, y1, x2, y2, truncation, occlusion) in output pixels."""
        data = self.label_text(objects, size, image_name).encode("utf-8")
        fd = os.open(os.path.join(root, self.label_rel(fold, stem)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)


class _FoldImages:
    """Images in `train/images/` and `val/images/`; place moves a validation image decided late."""

    FOLDERS = ("images",)  # in each fold

    def __init__(self, root: Path):
        self.root = root

    # -- used by workers -------------------------------------------------------------------
    @staticmethod
    def class_name(cls: str) -> str:
        return kitti.class_name(cls)

    @staticmethod
    def image_rel(fold: str, stem: str, ext: str) -> str:
        return f"{fold}/images/{stem}{ext}"

    # -- used by the driver ----------------------------------------------------------------
    def prepare(self) -> None:
        for fold in FOLDS:
            for folder in self.FOLDERS:
                (self.root / fold / folder).mkdir(parents=True, exist_ok=True)

    def _files(self, fold: str, stem: str, ext: str) -> tuple[str, ...]:
        """What an image has in a fold's folders (moved together)."""
        return (self.image_rel(fold, stem, ext),)

    def place(self, result, fold: str) -> None:
        """result: the worker's ItemResult; fold: the one the driver decided."""
        if fold != result.split:
            for old, new in zip(self._files(result.split, result.stem, result.ext),
                                self._files(fold, result.stem, result.ext)):
                os.rename(self.root / old, self.root / new)

    def finish(self, classes: list[str]) -> None:
        pass

    def close(self) -> None:
        pass


class KittiLayout(_LabelFiles, _FoldImages):
    name = "kitti"
    FOLDERS = ("images", "labels")

    @staticmethod
    def label_rel(fold: str, stem: str) -> str:
        return f"{fold}/labels/{stem}.txt"

    @staticmethod
    def label_text(objects, size: tuple[int, int], image_name: str) -> str:
        """objects: (class, x1, y1, x2, y2, truncation, occlusion) in output pixels."""
        return "".join(kitti.format_line(*o) + "\n" for o in objects)

    def _files(self, fold: str, stem: str, ext: str) -> tuple[str, ...]:
        return self.image_rel(fold, stem, ext), self.label_rel(fold, stem)


class CocoLayout(_FoldImages):
    name = "coco"
    ANNOTATIONS = "annotations.json"

    def __init__(self, root: Path):
        super().__init__(root)
        self._folds = {fold: coco.FoldRecords() for fold in FOLDS}

    @classmethod
    def label_rel(cls, fold: str, stem: str) -> str:
        """The file that holds the image's labels (for plates.jsonl)."""
        return f"{fold}/{cls.ANNOTATIONS}"

    @staticmethod
    def write_labels(root: str, fold: str, stem: str, objects, size: tuple[int, int], image_name: str):
        """No file an image: the boxes go back to the driver (ItemResult.annotation)."""
        return size, tuple(o[:5] for o in objects)

    def place(self, result, fold: str) -> None:
        super().place(result, fold)
        size, objects = result.annotation
        self._folds[fold].add(result.stem + result.ext, size, objects)

    def finish(self, classes: list[str]) -> None:
        for fold, records in self._folds.items():
            coco.write_coco(self.root / self.label_rel(fold, ""), records, classes)


class VocLayout(_LabelFiles):
    name = "voc"
    LISTS = {"train": ("train", "trainval"), "val": ("val", "test")}

    def __init__(self, root: Path):
        self.root = root
        self._lists: dict[str, IO[str]] = {}

    @staticmethod
    def class_name(cls: str) -> str:
        return " ".join(cls.split())

    @staticmethod
    def image_rel(fold: str, stem: str, ext: str) -> str:
        return f"JPEGImages/{stem}{ext}"

    @staticmethod
    def label_rel(fold: str, stem: str) -> str:
        return f"Annotations/{stem}.xml"

    @staticmethod
    def label_text(objects, size: tuple[int, int], image_name: str) -> str:
        return format_voc(image_name, size, [(c, x1, y1, x2, y2, occ) for c, x1, y1, x2, y2, _t, occ in objects])

    def prepare(self) -> None:
        for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for name in ("train", "val", "trainval", "test"):
            self._lists[name] = open(self.root / "ImageSets/Main" / f"{name}.txt", "w", encoding="utf-8")

    def place(self, result, fold: str) -> None:
        for name in self.LISTS[fold]:
            self._lists[name].write(result.stem + "\n")

    def finish(self, classes: list[str]) -> None:
        self.close()
        (self.root / "labels.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")

    def close(self) -> None:
        for handle in self._lists.values():
            handle.close()
        self._lists.clear()


_LAYOUTS = {layout.name: layout for layout in (KittiLayout, VocLayout, CocoLayout)}


def make_layout(name: str, root: Path):
    """The layout of a target in options.TARGETS, writing under root."""
    return _LAYOUTS[name](root)
