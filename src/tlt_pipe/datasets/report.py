"""What a conversion did: counts, drops with reasons and file:line examples, sizes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tlt_pipe.datasets.records import BAD_INPUT, UNREADABLE, Issue

EXAMPLES = 5
TOOL = "tltpipe convert"


@dataclass
class Tally:
    """A count and the first few places it happened (file or file:line)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, detail: str = "") -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{where}: {detail}" if detail else where)


@dataclass
class ConvertReport:
    format: str = ""
    source: str = ""
    output: str = ""
    layout: str = "kitti"
    images: int = 0  # images written
    train_images: int = 0
    val_images: int = 0
    objects_per_class: dict[str, int] = field(default_factory=dict)
    val_objects_per_class: dict[str, int] = field(default_factory=dict)
    # The output's classes in order: labels.txt's lines (VOC), COCO's category ids 1..N.
    classes: list[str] = field(default_factory=list)
    empty_images: int = 0  # written with an empty label file
    dropped: dict[str, Tally] = field(default_factory=dict)  # bad input and dropped boxes, by reason
    clamped: Tally = field(default_factory=Tally)
    unreadable: Tally = field(default_factory=Tally)
    unknown_classes: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, Tally] = field(default_factory=dict)  # images left out on purpose
    size_histogram: dict[str, int] = field(default_factory=dict)  # source "WxH" -> images
    image_extension: str = ".jpg"
    image_extensions: dict[str, int] = field(default_factory=dict)
    resize: list[int] | None = None
    resize_mode: str | None = None
    split_source: str = "random"  # "random" (seeded, stratified) or "source"
    val_split: float = 10.0
    seed: int = 0
    side_file: str | None = None  # plate type/text/corners, one JSON object per plate
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tool: str = TOOL

    # -- accumulation (used by the driver) ----------------------------------------------

    def add_issue(self, issue: Issue) -> None:
        self.dropped.setdefault(issue.reason, Tally()).add(issue.where, issue.detail)
        if issue.reason == UNREADABLE:
            self.unreadable.add(issue.where, issue.detail)

    def add_unknown(self, cls: str) -> None:
        self.unknown_classes[cls] = self.unknown_classes.get(cls, 0) + 1

    def add_skip(self, reason: str, where: str) -> None:
        self.skipped.setdefault(reason, Tally()).add(where)

    def add_image(self, split: str, size: tuple[int, int], ext: str, classes: tuple[str, ...]) -> None:
        self.images += 1
        if split == "val":
            self.val_images += 1
        else:
            self.train_images += 1
        key = f"{size[0]}x{size[1]}"
        self.size_histogram[key] = self.size_histogram.get(key, 0) + 1
        self.image_extensions[ext] = self.image_extensions.get(ext, 0) + 1
        if not classes:
            self.empty_images += 1
        per_class = self.objects_per_class
        for cls in classes:
            per_class[cls] = per_class.get(cls, 0) + 1
        if split == "val":
            per_class = self.val_objects_per_class
            for cls in classes:
                per_class[cls] = per_class.get(cls, 0) + 1

    def finish(self) -> None:
        """Sort the tables and derive the extension and the warnings."""
        self.objects_per_class = dict(sorted(self.objects_per_class.items()))
        self.val_objects_per_class = dict(sorted(self.val_objects_per_class.items()))
        self.unknown_classes = dict(sorted(self.unknown_classes.items(), key=lambda kv: (-kv[1], kv[0])))
        self.size_histogram = dict(sorted(self.size_histogram.items(), key=lambda kv: (-kv[1], kv[0])))
        self.dropped = dict(sorted(self.dropped.items()))
        self.skipped = dict(sorted(self.skipped.items()))
        if self.image_extensions:
            self.image_extension = max(self.image_extensions.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if len(self.image_extensions) > 1:
            self.warnings.append(
                "mixed image formats " + ", ".join(sorted(self.image_extensions))
                + f": TAO reads one extension ({self.image_extension}); use --resize to re-encode"
            )
        if self.images == 0:
            self.warnings.append("no image was converted")
        elif self.val_images == 0 and self.val_split > 0 and self.split_source == "random":
            self.warnings.append("the validation fold is empty (too few images)")
        if self.val_images:
            missing = sorted(set(self.objects_per_class) - set(self.val_objects_per_class))
            if missing:
                self.warnings.append("classes absent from the validation fold: " + ", ".join(missing))

    # -- output ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ConvertReport:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        for name in ("dropped", "skipped"):
            data[name] = {k: Tally(**v) for k, v in data.get(name, {}).items()}
        for name in ("clamped", "unreadable"):
            data[name] = Tally(**data.get(name, {}))
        return cls(**data)

    @property
    def bad_input(self) -> int:
        """Problems with the input (what --strict turns into an error)."""
        return sum(t.count for r, t in self.dropped.items() if r in BAD_INPUT)

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.format} -> {self.layout}: {self.images} images "
            f"({self.train_images} train, {self.val_images} val), split {self.split_source}"
            + (f" {self.val_split:g}% seed {self.seed}" if self.split_source == "random" else ""),
        ]
        if self.objects_per_class:
            per_class = ", ".join(
                f"{cls} {n} ({self.val_objects_per_class.get(cls, 0)} val)"
                for cls, n in self.objects_per_class.items()
            )
            lines.append(f"objects: {per_class}")
        if self.empty_images:
            lines.append(f"images without objects: {self.empty_images}")
        sizes = list(self.size_histogram.items())
        if sizes:
            shown = ", ".join(f"{k} {v}" for k, v in sizes[:4])
            more = f" (+{len(sizes) - 4} other sizes)" if len(sizes) > 4 else ""
            lines.append(f"source sizes: {shown}{more}")
        if self.resize:
            lines.append(f"resized to {self.resize[0]}x{self.resize[1]} ({self.resize_mode})")
        else:
            lines.append("images hard-linked (no re-encoding)")
        lines.append(f"image extension: {self.image_extension}")
        if self.clamped.count:
            lines.append(f"clamped to the image: {self.clamped.count} boxes{_example(self.clamped)}")
        for reason, tally in self.dropped.items():
            lines.append(f"dropped, {reason}: {tally.count}{_example(tally)}")
        if self.unknown_classes:
            unknown = ", ".join(f"{k} {v}" for k, v in list(self.unknown_classes.items())[:8])
            lines.append(f"unknown classes: {unknown}")
        for reason, tally in self.skipped.items():
            lines.append(f"skipped, {reason}: {tally.count}")
        if self.side_file:
            lines.append(f"plate metadata: {self.side_file}")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        lines.append(f"report: {self.output.rstrip('/')}/report.json ({self.seconds:.1f} s)")
        return lines


def _example(tally: Tally) -> str:
    """The first place a tally counted, for a summary line."""
    return f" (e.g. {tally.examples[0]})" if tally.examples else ""
