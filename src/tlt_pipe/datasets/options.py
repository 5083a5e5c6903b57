"""What a conversion is asked to do, validated once at construction."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tlt_pipe.errors import ConfigError

RESIZE_MODES = ("stretch", "letterbox")
TARGETS = ("kitti", "voc", "coco")  # the output layouts (datasets/layout.py)


@dataclass(frozen=True)
class ConvertOptions:
    """Options shared by every format.

    classes: source class -> training class; None keeps every class (lower-cased). Source
        classes missing from the map are "unknown": skipped and counted (an error with strict).
    resize: (width, height), both multiples of resize_multiple, or None to keep images untouched
        (hard-linked, never re-encoded).
    resize_multiple: what resize must be a multiple of: 16 (DetectNet_v2's stride) unless the
        caller knows its network's own rule (the pipeline passes the model's input multiple).
    val_split: percent of images for the validation fold when the source has no split of
        its own (or when resplit is set).
    jobs: worker processes (default: every core); 1 runs in this process.
    subsets: only these subsets/regions (e.g. CRPD ["single", "double"], CCPD ["base"]).
    names_file: YOLO class names (obj.names or data.yaml).
    to: output layout, "kitti" (train/ and val/ trees), "voc" (PyTorch SSD layout) or "coco"
        (train/ and val/ images with an annotations.json each, for RT-DETR and DINO).
    resplit: ignore a train/val partition the source provides and split afresh.
    jpeg_quality: quality of re-encoded JPEGs (only with resize).
    """

    classes: Mapping[str, str] | None = None
    resize: tuple[int, int] | None = None
    resize_mode: str = "stretch"
    val_split: float = 10.0
    seed: int = 0
    jobs: int | None = None
    strict: bool = False
    subsets: Sequence[str] | None = None
    names_file: Path | None = None
    to: str = "kitti"
    resplit: bool = False
    jpeg_quality: int = 95
    resize_multiple: int = 16
    # With resize: the one extension every re-encoded image takes (the sources' most common of .jpg, .png and
    # .bmp; TAO reads one extension per folder). Set by the conversion from what it found.
    resize_ext: str = ".jpg"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.classes is not None:
            if not isinstance(self.classes, Mapping) or not self.classes:
                raise ConfigError("classes: expected a non-empty mapping source -> training class")
            mapping = {}
            for key, value in self.classes.items():
                key, value = str(key).strip(), str(value).strip()
                if not key or not value:
                    raise ConfigError(f"classes: empty class name in {key!r}: {value!r}")
                mapping[key.lower()] = value
            set_(self, "classes", mapping)
        if self.resize is not None:
            size = parse_resize(self.resize) if isinstance(self.resize, str) else self.resize
            try:
                width, height = (int(v) for v in size)
            except (TypeError, ValueError):
                raise ConfigError(f"resize: expected [width, height], got {self.resize!r}") from None
            step = self.resize_multiple
            if width <= 0 or height <= 0 or width % step or height % step:
                raise ConfigError(
                    f"resize: {width}x{height} is not a positive multiple of {step} in both dimensions"
                )
            if max(width, height) > MAX_SIDE:
                raise ConfigError(f"resize: {width}x{height}: at most {MAX_SIDE} pixels a side (a model input, not a "
                                  "poster)")
            set_(self, "resize", (width, height))
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode: expected one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")
        try:
            val_split = float(self.val_split)
        except (TypeError, ValueError):
            raise ConfigError(f"val_split: expected a percentage, got {self.val_split!r}") from None
        if not 0.0 <= val_split < 100.0:
            raise ConfigError(f"val_split: expected a percentage in [0, 100), got {self.val_split!r}")
        set_(self, "val_split", val_split)
        if self.jobs is not None and int(self.jobs) < 1:
            raise ConfigError(f"jobs: expected a positive number, got {self.jobs!r}")
        if self.subsets is not None:
            subsets = [self.subsets] if isinstance(self.subsets, str) else list(self.subsets)
            set_(self, "subsets", tuple(normalise_subset(s) for s in subsets if str(s).strip()))
        if self.names_file is not None:
            set_(self, "names_file", Path(self.names_file))
        if self.to not in TARGETS:
            raise ConfigError(f"to: expected one of {', '.join(TARGETS)}, got {self.to!r}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ConfigError(f"jpeg_quality: expected 1..100, got {self.jpeg_quality!r}")

    @property
    def workers(self) -> int:
        """jobs, or the cores this process may run on."""
        if self.jobs:
            return int(self.jobs)
        from tlt_pipe.process_pool import usable_cpus  # not at command-line start-up

        return usable_cpus()

    def wants(self, group: str) -> bool:
        """Whether a subset/region is selected."""
        return not self.subsets or normalise_subset(group) in self.subsets


def normalise_subset(name: str) -> str:
    """'CRPD_single' -> 'single', 'ccpd_base' -> 'base', 'US' -> 'us'."""
    name = str(name).strip().lower()
    for prefix in ("crpd_", "ccpd_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


MAX_SIDE = 8192  # the largest resize side: far above any detector input, far below what exhausts memory


def parse_resize(text: str) -> tuple[int, int]:
    """'960x544' -> (960, 544)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX*,]\s*(\d+)\s*", str(text))
    if not match:
        raise ConfigError(f"resize: expected WIDTHxHEIGHT like 960x544, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_classes(text: str) -> dict[str, str]:
    """A class map from `a=b,c=d`, `a,b` (keep these), or a YAML/JSON file path."""
    text = str(text).strip()
    path = Path(text)
    if text and (os.path.lexists(path) or _names_a_file(text)):
        return _classes_from_file(path)  # a missing file is an error, never a class named like the file
    mapping: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        source, sep, target = part.partition("=")
        source, target = source.strip(), target.strip()
        if not source or (sep and not target):
            raise ConfigError(f"classes: expected source=target, got {part!r}")
        mapping[source] = target if sep else source
    if not mapping:
        raise ConfigError(f"classes: no class in {text!r}")
    check_class_names([*mapping, *mapping.values()], "classes")
    return mapping


def check_class_names(names: Sequence[str], source: str) -> None:
    """Class names that can be written to a label file, labels.txt, VOC XML and COCO JSON: ConfigError at the
    first with a control character."""
    for name in names:
        if not name.isprintable():
            raise ConfigError(f"{source}: class {name!r} has a control character; class names are printable text")


_CLASS_MAP_SUFFIXES = (".yaml", ".yml", ".json", ".txt", ".names")


def _names_a_file(text: str) -> bool:
    """`--classes ./classes.yml`: one item, written as a path or with a class map's extension."""
    return "=" not in text and "," not in text and ("/" in text or text.lower().endswith(_CLASS_MAP_SUFFIXES))


def _classes_from_file(path: Path) -> dict[str, str]:
    from tlt_pipe import yamldoc  # not at import: the command line's help does not read YAML
    from tlt_pipe.regular_file import read_text

    try:
        text = read_text(path, "utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read class map: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the class map as UTF-8") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{path}: not a valid class map: {str(exc).splitlines()[0][:200]}") from None
    else:
        _, data = yamldoc.read(text, str(path))
    if isinstance(data, Mapping) and isinstance(data.get("classes"), (Mapping, list)):
        data = data["classes"]
    names = [*data, *data.values()] if isinstance(data, Mapping) else data if isinstance(data, list) else []
    unquoted = [name for name in names if isinstance(name, bool) or name is None]
    if unquoted:
        raise ConfigError(f"{path}: a class named {unquoted[0]}: YAML reads yes, no, on, off, true, false and null "
                          "so; quote the name")
    if isinstance(data, list) and all(isinstance(v, (str, int)) for v in data):
        mapping = {str(v): str(v) for v in data}
    elif isinstance(data, Mapping) and data and all(isinstance(v, (str, int)) for v in data.values()):
        mapping = {str(k): str(v) for k, v in data.items()}
    else:
        raise ConfigError(f"{path}: expected a mapping source -> training class or a list of classes")
    check_class_names([*mapping, *mapping.values()], str(path))
    return mapping
