"""What a stage asks a runner to do, and what the runner reports back.

Plain data: stages build Tasks without knowing how they are run, and runners run them
without knowing what they mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Mount:
    """A host path made visible in the container."""

    host: Path
    container: str
    read_only: bool = False


@dataclass(frozen=True)
class Task:
    """One process to run in one container image."""

    image: str
    argv: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    # Values that must never be printed or written (the TAO key); the runner redacts them
    # from the streamed output and the log file.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # The GPUs this task is given when stages share a machine's GPUs side by side (device indices);
    # None: the runner's own setting (runner.gpus; a batch job gets what the scheduler gives it).
    gpus: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RunResult:
    """How a task ended."""

    exit_code: int
    image_id: str
    log_path: Path
    oom_killed: bool = False
    interrupted: bool = False  # stopped because tltpipe got SIGINT/SIGTERM
    job: Mapping[str, Any] | None = None  # a batch job: {runner, id, node, state, exit_code}, for the manifest
    # Why the task should run again, when the scheduler took it away before it ended (preempted, requeued,
    # its node failed); None when it ended by itself.
    requeue: str | None = None
