"""The interface every runner (docker, local, slurm) implements."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from typing import Any, Protocol

from tlt_pipe.task import RunResult, Task

# Called with each complete line of a task's output (secrets already redacted).
OnLine = Callable[[str], None]


class Cancelled(BaseException):
    """Raised by Runner.run in the thread running a task when its cancel event was set: the task was
    stopped as on Ctrl-C (a BaseException, like KeyboardInterrupt, so no handler mistakes it for a failure)."""


@dataclass(frozen=True)
class JobInfo:
    """One task a runner started (a container, a host process, a batch job), as found again later."""

    id: str
    name: str
    status: str  # running, exited, created, ...
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobEnd:
    """How an adopted job ended: its exit code, its whole output (secrets redacted), whether it was killed
    for memory, and, for a batch job, what the manifest records of it ({runner, id, node, state, exit_code})."""

    exit_code: int
    text: str
    oom_killed: bool = False
    job: Mapping[str, Any] | None = None


class Runner(Protocol):
    def run(
        self,
        task: Task,
        *,
        log_path: Path,
        labels: Mapping[str, str],
        on_line: OnLine | None = None,
        on_progress: OnLine | None = None,
        cancel: Event | None = None,
    ) -> RunResult:
        """Run the task to completion and return how it ended.

        Streams complete output lines live to on_line and appends them to log_path; in-place
        redraws (carriage-return progress bars) go to on_progress only and are never logged. Always stops and
        removes the container: on success, failure, KeyboardInterrupt and SystemExit
        (the exception is re-raised after cleanup). Tasks run side by side in threads of their own; setting
        cancel (from another thread) stops the task the same way, and run then raises Cancelled.
        The callbacks are called from the thread that called run.
        """
        ...

    def image_id(self, image: str) -> str | None:
        """The local id of an image reference, or None when it is not present."""
        ...

    def ensure_image(self, image: str, on_line: OnLine | None = None) -> str:
        """The image's local id, fetching it first if the runner can; a clear error when it cannot."""
        ...

    def find_jobs(self, labels: Mapping[str, str] | None = None) -> list[JobInfo]:
        """Jobs this runner started (running or not) carrying all the labels: what recovery adopts."""
        ...

    def wait_job(self, job_id: str, secrets: Iterable[str] = ()) -> JobEnd:
        """Wait for a job to end, and say how it ended."""
        ...

    def remove_job(self, job_id: str) -> None:
        """Forget a job, stopping it first if it runs."""
        ...
