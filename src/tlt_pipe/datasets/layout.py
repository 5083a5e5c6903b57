"""Output layouts: where images and labels go and what a label file contains.

KITTI (what TAO reads): `train/{images,labels}/`, `val/{images,labels}/`. Workers write
every image to the fold the source decided, or to train/ when the split is decided later;
the driver then moves the validation images (a rename, same filesystem).

VOC for the PyTorch SSD trainer: `Annotations/`, `JPEGImages/`, `labels.txt` and
`ImageSets/Main/{train,val,trainval,test}.txt`. That trainer trains on trainval.txt and
validates on test.txt, so trainval.txt lists the training fold and test.txt the
validation fold (train.txt and val.txt hold the same folds): the validation images are
never trained on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from tlt_pipe.datasets import kitti
from tlt_pipe.datasets.voc import format_voc

FOLDS = ("train", "val")


class KittiLayout:
    name = "kitti"

    def __init__(self, root: Path):
        self.root = root

    # -- used by workers -------------------------------------------------------------------
    @staticmethod
    def class_name(cls: str) -> str:
        return kitti.class_name(cls)

    @staticmethod
    def image_rel(fold: str, stem: str, ext: str) -> str:
        return f"{fold}/images/{stem}{ext}"

    @staticmethod
    def label_rel(fold: str, stem: str) -> str:
        return f"{fold}/labels/{stem}.txt"

    @staticmethod
    def label_text(objects, size: tuple[int, int], image_name: str) -> str:
        """objects: (class, x1, y1, x2, y2, truncation, occlusion) in output pixels."""
        return "".join(kitti.format_line(*o) + "\n" for o in objects)

    # -- used by the driver ----------------------------------------------------------------
    def prepare(self) -> None:
        for fold in FOLDS:
            (self.root / fold / "images").mkdir(parents=True, exist_ok=True)
            (self.root / fold / "labels").mkdir(parents=True, exist_ok=True)

    def place(self, stem: str, ext: str, written: str, fold: str) -> None:
        if fold != written:
            os.rename(self.root / self.image_rel(written, stem, ext), self.root / self.image_rel(fold, stem, ext))
            os.rename(self.root / self.label_rel(written, stem), self.root / self.label_rel(fold, stem))

    def finish(self, classes: list[str]) -> None:
        pass

    def close(self) -> None:
        pass


class VocLayout:
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

    def place(self, stem: str, ext: str, written: str, fold: str) -> None:
        for name in self.LISTS[fold]:
            self._lists[name].write(stem + "\n")

    def finish(self, classes: list[str]) -> None:
        self.close()
        (self.root / "labels.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")

    def close(self) -> None:
        for handle in self._lists.values():
            handle.close()
        self._lists.clear()


def make_layout(name: str, root: Path):
    return {"kitti": KittiLayout, "voc": VocLayout}[name](root)
