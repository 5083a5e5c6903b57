"""Converting one image: read its labels, map classes, clamp, resize, write image and label.

Runs in pool worker processes (or in the calling process with one job). Everything it
needs arrives once through `init`; per image only an `Item` goes in and a small
`ItemResult` comes back. Files are written inside the driver's temporary output tree.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tlt_pipe.datasets import formats, images, kitti
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.layout import make_layout
from tlt_pipe.datasets.records import (
    BAD_CLASS,
    BAD_FILE,
    DEGENERATE,
    DONTCARE,
    MISSING_IMAGE,
    UNKNOWN_CLASS,
    UNREADABLE,
    Issue,
    Item,
    ItemResult,
    Skip,
    SkipImage,
)
from tlt_pipe.process_pool import ignore_interrupts


@dataclass(frozen=True)
class Job:
    fmt: str
    source: SourceContext
    out: Path  # the temporary output root
    layout: str  # one of options.TARGETS


class _State:
    job: Job
    fmt: formats.Format
    layout: object
    out: str


_state: _State | None = None


def init(job: Job, in_worker: bool = True) -> None:
    """Set up this process for `process` (a pool initializer)."""
    global _state
    if in_worker:
        ignore_interrupts()
    images.reset_link_state()
    state = _State()
    state.job = job
    state.fmt = formats.get(job.fmt)
    state.layout = make_layout(job.layout, job.out)
    state.out = os.fspath(job.out)
    _state = state


def process(item: Item) -> ItemResult:
    state = _state
    assert state is not None, "worker.init was not called"
    job, layout = state.job, state.layout
    src = job.source
    options = src.options
    fold = item.split or "train"
    result = ItemResult(stem=item.stem, ok=False, split=fold)
    try:
        image = images.SourceImage(src.path(item.image))
    except images.Missing:
        result.issues.append(Issue(MISSING_IMAGE, src.where(item.image), "image file does not exist"))
        return result
    except images.Unreadable as exc:
        result.issues.append(Issue(UNREADABLE, src.where(item.image), f"unreadable image: {exc}"))
        return result
    with image:
        width, height = image.size
        try:
            objects, problems = state.fmt.load(src, item, image.size)
        except SkipImage as skip:
            result.skip = Skip(skip.reason, src.where(item.image))
            return result
        except OSError as exc:
            result.issues.append(
                Issue(BAD_FILE, src.where(item.label or item.image), f"cannot read: {exc.strerror or exc}")
            )
            return result
        label_file = item.label or item.image
        for problem in problems:
            result.issues.append(Issue(problem.reason, src.where(label_file, problem.line), problem.detail))
            if problem.reason == UNKNOWN_CLASS:
                result.unknown.append(problem.value or problem.detail)
        if any(problem.reason == BAD_FILE for problem in problems):
            return result  # objects unknown: not even a background image
        plan = images.plan_resize(image.size, options.resize, options.resize_mode) if options.resize else None
        out_size = plan.size if plan else image.size
        kept: list[tuple] = []
        plates: list[str] = []
        for obj in objects:
            where = src.where(label_file, obj.line or None)
            source_class = obj.cls.strip()
            if not source_class.isprintable():  # it would reach labels.txt, the KITTI lines, VOC's XML, COCO
                result.issues.append(Issue(BAD_CLASS, where, f"class {source_class!r}"))
                continue
            if source_class.lower() == "dontcare" and (
                options.classes is None or "dontcare" not in options.classes
            ):
                result.dropped.append(Issue(DONTCARE, where, "DontCare region"))
                continue
            target = source_class.lower() if options.classes is None else options.classes.get(source_class.lower())
            if target is None:
                result.issues.append(Issue(UNKNOWN_CLASS, where, f"unknown class {source_class!r}"))
                result.unknown.append(source_class)
                continue
            box, moved = kitti.clamp((obj.x1, obj.y1, obj.x2, obj.y2), width, height)
            if moved:
                result.clamped.append(where)
            if plan is not None:
                (x1, y1), (x2, y2) = plan.point(box[0], box[1]), plan.point(box[2], box[3])
                box, _ = kitti.clamp((x1, y1, x2, y2), *plan.size)
            if kitti.degenerate(box):
                result.dropped.append(
                    Issue(DEGENERATE, where, "box ({:.1f},{:.1f})-({:.1f},{:.1f}) is empty in whole pixels".format(*box))
                )
                continue
            name = layout.class_name(target)
            kept.append((name, *box, obj.truncation, obj.occlusion))
            if obj.plate is not None:
                plates.append(_plate_record(len(kept), name, box, obj.plate, plan, where))
        ext = options.resize_ext if plan else image.ext  # re-encoded: the one extension of the whole output
        image_path = os.path.join(state.out, layout.image_rel(fold, item.stem, ext))
        try:
            if plan is not None:
                image.save_resized(image_path, plan, options.jpeg_quality)
            else:
                image.check_complete()
                image.link_to(image_path)
        except images.Unreadable as exc:
            result.issues.append(Issue(UNREADABLE, src.where(item.image), f"unreadable image: {exc}"))
            return result
    result.annotation = layout.write_labels(state.out, fold, item.stem, kept, out_size, item.stem + ext)
    result.ok = True
    result.ext = ext
    result.size = (width, height)
    result.classes = tuple(k[0] for k in kept)
    result.plates = plates
    return result


def _plate_record(line: int, cls: str, box, plate: dict, plan, where: str) -> str:
    """The plate as a JSON object (the driver puts the image and label paths in front)."""
    record = {"line": line, "class": cls, "box": [round(v, 2) for v in box]}
    for key, value in plate.items():
        if key in ("corners", "vertices") and value:
            points = [plan.point(x, y) if plan else (x, y) for x, y in value]
            value = [[round(x, 2), round(y, 2)] for x, y in points]
        record[key] = value
    record["source"] = where
    return json.dumps(record, ensure_ascii=False)
