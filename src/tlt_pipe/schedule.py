"""Which stages of a run may go side by side: how many at once, on which GPUs, and which are ready.
Pure: the executor (pipeline.py) asks, and starts what the answers allow.

    evaluate ─┐                 a stage is ready once every stage it depends on (of this run) has
    train ────┼─ prune ─ ...    finished; up to `limit` run at once, and with a list of GPUs each
              └─ ...            container stage holds one of them while it runs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tlt_pipe.config import RunnerConfig


@dataclass(frozen=True)
class Slots:
    """limit: the most stages running at once (None: no limit; a batch scheduler queues them).
    gpus: the GPUs container stages take one each while they run (None: every stage gets the runner's
    GPU setting)."""

    limit: int | None
    gpus: tuple[int, ...] | None = None


def slots_for(runner: RunnerConfig) -> Slots:
    """runner.jobs caps it. By default: Slurm runs whatever is ready; docker and local run one stage per
    GPU of a gpus list of two or more, each on its own GPU, else one at a time."""
    pinned = (tuple(runner.gpus) if runner.kind != "slurm" and isinstance(runner.gpus, list)
              and len(runner.gpus) > 1 else None)
    if runner.jobs is not None:
        return Slots(runner.jobs, pinned)
    if runner.kind == "slurm":
        return Slots(None)
    return Slots(len(pinned) if pinned else 1, pinned)


def ready(order: Sequence[str], upstream: Mapping[str, Iterable[str]], finished: Collection[str],
          started: Collection[str]) -> list[str]:
    """The stages of `order` not started yet whose upstream stages within `order` have all finished,
    in run order."""
    chosen = set(order)
    return [name for name in order if name not in started
            and all(n in finished for n in upstream.get(name, ()) if n in chosen)]
