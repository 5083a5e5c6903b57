"""Finding images and label files in a source tree (names only, sorted, no file contents)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS)


def child_dir(parent: Path, *names: str) -> Path | None:
    """The first existing subdirectory among names (matched case-insensitively)."""
    try:
        entries = {e.name.lower(): e.name for e in os.scandir(parent) if e.is_dir()}
    except OSError:
        return None
    for name in names:
        found = entries.get(name.lower())
        if found is not None:
            return parent / found
    return None


def subdirs(parent: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(parent) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def files(directory: Path) -> list[str]:
    """Sorted file names in a directory (not recursive)."""
    try:
        return sorted(e.name for e in os.scandir(directory) if e.is_file() and not e.name.startswith("."))
    except OSError:
        return []


def images_by_stem(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Map stem -> image name; second result: images whose stem was already taken."""
    by_stem: dict[str, str] = {}
    extra: list[str] = []
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTS)}
    for name in sorted(
        (n for n in names if is_image(n)), key=lambda n: (os.path.splitext(n)[0], rank[os.path.splitext(n)[1].lower()])
    ):
        stem = os.path.splitext(name)[0]
        if stem in by_stem:
            extra.append(name)
        else:
            by_stem[stem] = name
    return by_stem, extra


def pair_by_stem(
    image_names: list[str], label_names: list[str], label_ext: str
) -> Iterator[tuple[str, str | None, str | None]]:
    """(stem, image name or None, label name or None) for every stem, sorted by stem.

    Images sharing a stem with another image are yielded with stem "" and no label (the
    caller reports them as duplicates).
    """
    images, extra = images_by_stem(image_names)
    labels = {
        os.path.splitext(n)[0]: n for n in label_names if n.lower().endswith(label_ext)
    }
    for stem in sorted(images.keys() | labels.keys()):
        yield stem, images.get(stem), labels.get(stem)
    for name in extra:
        yield "", name, None


def walk_files(root: Path) -> Iterator[Path]:
    """Every file below root, depth first, sorted, hidden entries skipped."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        dirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                dirs.append(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)
        stack.extend(reversed(dirs))


def rel(path: Path | str, root: Path | str) -> str:
    """A path relative to root, with forward slashes ("." for root itself)."""
    p, r = os.fspath(path), os.fspath(root).rstrip("/")
    if p == r:
        return "."
    if p.startswith(r + "/") and os.sep == "/":
        return p[len(r) + 1:]
    return Path(path).relative_to(root).as_posix()


def join(base: str, name: str) -> str:
    """A relative path below a relative directory ("." is the root)."""
    return name if base in ("", ".") else f"{base}/{name}"


def split_of(parts: tuple[str, ...] | list[str]) -> str | None:
    """The split a path belongs to, from a component named train/val/valid/test..."""
    for part in parts:
        split = SPLIT_NAMES.get(part.lower())
        if split:
            return split
    return None
