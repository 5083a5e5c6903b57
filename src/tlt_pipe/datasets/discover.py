"""Finding images and label files in a source tree (names only, sorted, no file contents).

A folder that cannot be listed is never taken for an empty one: listing it raises Unlistable (an InputError
naming it), and walk_files yields one for a folder below its root, for the scanner to report. Whatever is
not a folder counts as a file (a link to nothing, a FIFO, a device): its reader (regular_file.open_regular)
reports it by name instead of it being left out or waited on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from tlt_pipe.errors import InputError

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


class Unlistable(InputError):
    """A folder that cannot be listed (no permission, gone, not a folder): the message names it and why."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.detail = Path(path), f"cannot list this folder: {reason}"
        super().__init__(f"{path}: {self.detail}")


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS)


def _listing(directory: Path | str) -> list[os.DirEntry]:
    """Every entry of a folder, or Unlistable."""
    try:
        with os.scandir(directory) as listing:
            return list(listing)
    except OSError as exc:
        raise Unlistable(directory, exc.strerror or str(exc)) from None


def _entries(directory: Path, kind: str) -> list[os.DirEntry]:
    """The directory's entries that are folders (kind "dir") or files ("file": everything else), following
    links; Unlistable when the folder itself cannot be listed. An entry that cannot be looked at (a link
    loop, no permission) counts as a file, not as a reason to drop the whole folder."""
    found = []
    for entry in _listing(directory):
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir == (kind == "dir"):
            found.append(entry)
    return found


def child_dir(parent: Path, *names: str) -> Path | None:
    """The first existing subdirectory among names (matched case-insensitively)."""
    entries = {e.name.lower(): e.name for e in _entries(parent, "dir")}
    for name in names:
        found = entries.get(name.lower())
        if found is not None:
            return parent / found
    return None


def subdirs(parent: Path) -> list[Path]:
    return sorted(Path(e.path) for e in _entries(parent, "dir") if not e.name.startswith("."))


def files(directory: Path) -> list[str]:
    """Sorted file names in a directory (not recursive)."""
    return sorted(e.name for e in _entries(directory, "file") if not e.name.startswith("."))


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


def walk_files(root: Path) -> Iterator[Path | Unlistable]:
    """Every file below root, depth first, sorted, hidden entries skipped. A folder reached again through a
    link (a loop) is walked once; anything that is not a folder is yielded (its reader reports what it
    cannot read). Root itself not listable raises Unlistable; a folder below it is yielded as one (and left
    out), for the caller to report."""
    stack, seen = [root], set()
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(_listing(directory), key=lambda e: e.name)
            info = os.stat(directory)
        except Unlistable as error:
            if directory == root:
                raise
            yield error
            continue
        except OSError:  # gone since it was listed
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                dirs.append(Path(entry.path))
            else:  # a file, or what its reader will report by name (a link to nothing, a FIFO, a device)
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
