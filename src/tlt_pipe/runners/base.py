"""The interface every runner (Docker today; Kubernetes or Slurm later) implements."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from tlt_pipe.task import RunResult, Task

# Called with each complete line of container output (secrets already redacted).
OnLine = Callable[[str], None]


class Runner(Protocol):
    def run(
        self,
        task: Task,
        *,
        log_path: Path,
        labels: Mapping[str, str],
        on_line: OnLine | None = None,
        on_progress: OnLine | None = None,
    ) -> RunResult:
        """Run the task to completion and return how it ended.

        Streams complete output lines live to on_line and appends them to log_path; in-place
        redraws (carriage-return progress bars) go to on_progress only and are never logged. Always stops and
        removes the container: on success, failure, KeyboardInterrupt and SystemExit
        (the exception is re-raised after cleanup).
        """
        ...

    def image_id(self, image: str) -> str | None:
        """The local id of an image reference, or None when it is not present."""
        ...

    def ensure_image(self, image: str, on_line: OnLine | None = None) -> str:
        """The image's local id, fetching it first if the runner can; a clear error when it cannot."""
        ...

    def find_containers(self, labels: Mapping[str, str] | None = None) -> list:
        """Containers this runner started (running or not) carrying all the labels."""
        ...

    def wait_container(self, container_id: str, secrets: Iterable[str] = ()) -> tuple[int, str, bool]:
        """Wait for a container to exit: (exit code, its output with secrets redacted, OOM-killed)."""
        ...

    def remove_container(self, container_id: str) -> None:
        """Remove a container, stopping it first if it runs."""
        ...
