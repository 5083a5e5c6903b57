"""Content fingerprints of files and folders, cheap on re-runs.

A file's sha256 is remembered with its size and mtime, so an unchanged file is not read again.
A folder's fingerprint covers every file's relative path, size and mtime (no content reads):
datasets and results folders hold thousands of files.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from itertools import compress
from operator import not_
from pathlib import Path
from stat import S_ISDIR
from typing import Any

_CHUNK = 1 << 20
_BATCH = 4096


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _entry_stat(name: str, handle: int) -> os.stat_result | None:
    """An entry's stat, following a symlink; for one that cannot be followed (dangling, or a loop), the
    link's own; None for one that cannot be stat'ed at all (like a folder that cannot be listed)."""
    try:
        return os.stat(name, dir_fd=handle)
    except OSError:
        try:
            return os.stat(name, dir_fd=handle, follow_symlinks=False)
        except OSError:
            return None


def tree_fingerprint(root: Path) -> str:
    """sha256 over (relative path, size, mtime_ns) of every file below root: each folder's files in name
    order, then its subfolders in name order (symlinked folders are not entered; a symlink that cannot
    be followed, dangling or looping, counts with its own size and mtime; what cannot be listed or
    stat'ed at all is left out). A folder is listed once and
    its entries stat'ed relative to an open handle on it (no path lookup from the root per file), a
    batch at a time so memory stays flat in the file count: one stat per file is most of the cost."""
    digest = hashlib.sha256()

    def walk(top: str, prefix: str) -> None:
        try:
            names = sorted(os.listdir(top))
            handle = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        folders: list[str] = []
        try:
            for start in range(0, len(names), _BATCH):
                batch = names[start:start + _BATCH]
                try:
                    stats = [os.stat(name, dir_fd=handle) for name in batch]
                except OSError:  # some entry cannot be followed: take those one by one
                    known = [(name, st) for name in batch if (st := _entry_stat(name, handle)) is not None]
                    batch, stats = [name for name, _ in known], [st for _, st in known]
                kinds = [S_ISDIR(st.st_mode) for st in stats]
                if any(kinds):
                    folders += compress(batch, kinds)
                    pairs = compress(zip(batch, stats), map(not_, kinds))
                else:
                    pairs = zip(batch, stats)
                digest.update("".join([f"{prefix}{name}\0{st.st_size}\0{st.st_mtime_ns}\n"
                                       for name, st in pairs]).encode("utf-8", "surrogateescape"))
        finally:
            os.close(handle)
        for name in folders:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                walk(path, f"{prefix}{name}/")

    walk(str(root), "")
    return digest.hexdigest()


def tree_fingerprints(roots: list[Path]) -> dict[str, str]:
    """tree_fingerprint of several folders (str(path) -> digest), walked side by side in worker processes
    when there are several and the machine has the cores: one stat per file is system-call bound."""
    workers = min(len(roots), os.cpu_count() or 1)
    if workers < 2 or threading.active_count() > 1:  # forking a threaded process is not safe
        return {str(root): tree_fingerprint(root) for root in roots}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return dict(zip(map(str, roots), pool.map(tree_fingerprint, roots)))


def path_fingerprint(path: Path, cache: Mapping[str, Any] | None = None,
                     trees: dict[str, str] | None = None) -> dict[str, Any]:
    """{path, kind, size, mtime_ns, sha256} for a file (hash reused from cache when size and mtime match),
    {path, kind, tree} for a folder, {path, kind: missing} otherwise. trees: folders already walked in
    this command (the caller forgets them once a stage has written anything)."""
    key = str(path)
    if path.is_file():
        size, mtime = stat_key(path)
        old = (cache or {}).get(key)
        if old and old.get("size") == size and old.get("mtime_ns") == mtime and old.get("sha256"):
            digest = old["sha256"]
        else:
            digest = sha256_file(path)
        return {"path": key, "kind": "file", "size": size, "mtime_ns": mtime, "sha256": digest}
    if path.is_dir():
        if trees is None:
            return {"path": key, "kind": "dir", "tree": tree_fingerprint(path)}
        if key not in trees:
            trees[key] = tree_fingerprint(path)
        return {"path": key, "kind": "dir", "tree": trees[key]}
    return {"path": key, "kind": "missing"}


def digest_of(parts: Mapping[str, Any]) -> str:
    """A stable sha256 of a JSON-able mapping."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def short(value: Any) -> str:
    """The comparable essence of a recorded fingerprint part (a hash or the value itself)."""
    if isinstance(value, Mapping):
        return value.get("sha256") or value.get("tree") or value.get("kind", "")
    return str(value)
