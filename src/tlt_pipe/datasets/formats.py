"""The source formats: how to scan each one and how to read one image's labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tlt_pipe.datasets import ccpd, crpd, kitti_source, openalpr, voc, yolo
from tlt_pipe.datasets.context import SourceContext


@dataclass(frozen=True)
class Format:
    name: str
    scan: Callable  # (SourceContext) -> Iterator[Item | Issue | Skip]
    load: Callable  # (SourceContext, Item, (w, h)) -> (list[Obj], list[Problem])
    prepare: Callable[[SourceContext], SourceContext] | None = None
    plates: bool = False  # objects carry plate metadata for the side file
    subsets: str = ""  # what options.subsets selects, "" when the format has no subsets


_FORMATS = {
    "crpd": Format("crpd", crpd.scan, crpd.load, plates=True, subsets="CRPD_<subset> directories"),
    "ccpd": Format("ccpd", ccpd.scan, ccpd.load, plates=True, subsets="ccpd_<subset> directories"),
    "yolo": Format("yolo", yolo.scan, yolo.load, prepare=yolo.prepare, subsets="top-level directories"),
    "voc": Format("voc", voc.scan, voc.load),
    "openalpr": Format("openalpr", openalpr.scan, openalpr.load, plates=True, subsets="region directories"),
    "kitti": Format("kitti", kitti_source.scan, kitti_source.load),
}

FORMATS: tuple[str, ...] = tuple(_FORMATS)


def get(name: str) -> Format:
    return _FORMATS[name]
