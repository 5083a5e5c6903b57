"""Choosing the checkpoint a training run continues from. Pure: the caller lists the files.

A checkpoint is not used when it is empty, much smaller than its siblings (cut off while being
written), or newer than the last epoch the training log says completed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from tlt_pipe.errors import ConfigError

TRUNCATED_FRACTION = 0.5  # smaller than half the median size of its siblings: cut off mid-write


@dataclass(frozen=True)
class ResumePoint:
    epoch: int
    checkpoint: str  # file name
    reason: str  # why this one, and which were passed over


def usable_checkpoints(checkpoints: Mapping[int, tuple[str, int]], completed_epoch: int | None) -> tuple[dict[int, str], list[str]]:
    """({epoch: name} usable, [why each other was passed over]) from {epoch: (name, size)}."""
    sizes = [size for _, size in checkpoints.values() if size > 0]
    median = statistics.median(sizes) if sizes else 0
    usable: dict[int, str] = {}
    rejected: list[str] = []
    for epoch in sorted(checkpoints):
        name, size = checkpoints[epoch]
        if size == 0:
            rejected.append(f"{name} is empty")
        elif size < TRUNCATED_FRACTION * median:
            rejected.append(f"{name} is truncated ({size} bytes, its siblings ~{int(median)})")
        elif completed_epoch is not None and epoch > completed_epoch:
            rejected.append(f"{name} is newer than the last completed epoch ({completed_epoch})")
        else:
            usable[epoch] = name
    return usable, rejected


def choose_resume_point(checkpoints: Mapping[int, tuple[str, int]], completed_epoch: int | None,
                        requested: int | None, *, where: str) -> ResumePoint | None:
    """The newest usable checkpoint, or exactly `requested`; None when nothing is usable (start over)."""
    usable, rejected = usable_checkpoints(checkpoints, completed_epoch)
    passed_over = f"; passed over: {'; '.join(rejected)}" if rejected else ""
    if requested is not None:
        if requested not in usable:
            why = next((r for r in rejected if checkpoints.get(requested, ("\0",))[0] in r), None)
            have = ", ".join(str(e) for e in usable) or "none"
            raise ConfigError(f"--resume-epoch {requested}: no usable checkpoint for epoch {requested} in {where}"
                              f" ({why or 'not saved'}); usable epochs: {have}")
        return ResumePoint(requested, usable[requested], f"epoch {requested} as asked{passed_over}")
    if not usable:
        return None
    epoch = max(usable)
    return ResumePoint(epoch, usable[epoch], f"newest complete checkpoint{passed_over}")
