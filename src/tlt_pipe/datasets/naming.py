"""Output file names: unique, safe for every tool, and not sorted by source subset.

TAO's dataset_convert validates on the alphabetically first N% of file names; a short hash
of the source path in front makes alphabetical order unrelated to the subset or split an
image came from, while subset/split/stem keep names unique and readable.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe(text: str) -> str:
    """Only letters, digits, '.', '_' and '-' (shell-, spec- and list-file-safe)."""
    return _UNSAFE.sub("_", text).strip("._") or "x"


def output_stem(source: str, *parts: str) -> str:
    """`<6 hex of hash(source)>_<parts joined by _>`, made safe."""
    digest = hashlib.blake2b(source.encode("utf-8", "surrogateescape"), digest_size=3).hexdigest()
    return safe("_".join([digest, *(p for p in parts if p)]))


def order_key(seed: int, stem: str) -> bytes:
    """A seeded, deterministic shuffle key (processing order and so the split)."""
    return hashlib.blake2b(f"{seed}\0{stem}".encode("utf-8", "surrogateescape"), digest_size=8).digest()


class UniqueStems:
    """Hands out stems, appending -2, -3... on a collision (after making names safe)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def take(self, stem: str) -> str:
        candidate, n = stem, 1
        while candidate in self._seen:
            n += 1
            candidate = f"{stem}-{n}"
        self._seen.add(candidate)
        return candidate
