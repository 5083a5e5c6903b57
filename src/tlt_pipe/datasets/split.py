"""A deterministic, streaming, stratified train/val split.

Images arrive one at a time in a seeded shuffled order (the driver sorts by a seeded hash
of the name) with the set of classes they contain; only per-class counters are kept, so
memory does not grow with the dataset. Per class the validation fold takes every
(100/percent)-th image, starting at a seeded phase, which keeps each class near the
requested percentage. On top of that, a class seen a second time with no image in the
validation fold yet goes there, and one with all its images in validation so far goes to
training: every class with at least two images appears in both folds, whatever its rarity.
An image's own classes can disagree; the most urgent wish wins, then the rarest class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

EMPTY = "\0empty"  # images without objects are a stratum of their own


class StratifiedSplitter:
    def __init__(self, val_percent: float, seed: int = 0):
        self.fraction = max(0.0, min(val_percent, 100.0)) / 100.0
        self.seed = seed
        self._seen: dict[str, int] = {}
        self._val: dict[str, int] = {}
        self._phase: dict[str, float] = {}

    def _phase_of(self, cls: str) -> float:
        phase = self._phase.get(cls)
        if phase is None:
            digest = hashlib.blake2b(f"{self.seed}\0{cls}".encode(), digest_size=8).digest()
            phase = self._phase[cls] = int.from_bytes(digest, "big") / 2**64
        return phase

    def assign(self, classes: Iterable[str]) -> str:
        """'train' or 'val' for the next image, then count it."""
        present = set(classes) or {EMPTY}
        if self.fraction <= 0:
            fold = "train"
        else:
            best: tuple | None = None
            for cls in sorted(present):
                seen = self._seen.get(cls, 0)
                val = self._val.get(cls, 0)
                train = seen - val
                if seen and not val and train:
                    wish, urgency = "val", 2
                elif val and not train:
                    wish, urgency = "train", 2
                else:
                    target = self.fraction * (seen + 1)
                    wish, urgency = ("val" if val + self._phase_of(cls) < target else "train"), 1
                rank = (-urgency, seen, cls)
                if best is None or rank < best[0]:
                    best = (rank, wish)
            fold = best[1]
        for cls in present:
            self._seen[cls] = self._seen.get(cls, 0) + 1
            if fold == "val":
                self._val[cls] = self._val.get(cls, 0) + 1
        return fold
