"""The local runner: each stage's command as a process on this machine (`runner: {kind: local}`).

For machines that have the TAO tools installed natively (a Jetson, a TAO container tltpipe itself
runs in) and for tests. Paths in the commands are host paths (the workspace is not mounted anywhere),
the output streams to the console and logs/<stage>.log exactly as from a container, and Ctrl-C or
SIGTERM stops the command's whole process group (SIGTERM, then SIGKILL after a grace period).

The process starts in a session of its own, so a tltpipe killed with -9 leaves it running; finding
and adopting such a process is not built yet (`find_containers` finds nothing), so the next run
records that stage as interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from tlt_pipe.logstream import LineSplitter, deliver
from tlt_pipe.runners.base import OnLine
from tlt_pipe.task import RunResult, Task

LOCAL_ID = "local"  # what the manifest records as the image id of a host process
GRACE_S = 10.0


class LocalRunner:
    def __init__(self, *, grace_s: float = GRACE_S):
        self.grace_s = grace_s

    def image_id(self, image: str) -> str | None:
        return LOCAL_ID

    def ensure_image(self, image: str, on_line: OnLine | None = None) -> str:
        return LOCAL_ID

    def find_containers(self, labels: Mapping[str, str] | None = None) -> list:
        return []

    def wait_container(self, container_id: str, secrets: Iterable[str] = ()) -> tuple[int, str, bool]:
        raise NotImplementedError("the local runner adopts no process")

    def remove_container(self, container_id: str) -> None:
        raise NotImplementedError("the local runner adopts no process")

    def run(self, task: Task, *, log_path: Path, labels: Mapping[str, str], on_line: OnLine | None = None,
            on_progress: OnLine | None = None) -> RunResult:
        """Run the command to its end; output to the log and the callbacks, redacted, as the Docker runner does."""
        secrets = [s for s in task.secrets if s]
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log_file:
            if shutil.which(task.argv[0]) is None:
                deliver(LineSplitter().feed(f"{task.argv[0]}: command not found (the local runner runs TAO's "
                                            "commands from this machine's PATH)\n"), log_file, secrets, on_line, None)
                return RunResult(exit_code=127, image_id=LOCAL_ID, log_path=log_path)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **dict(task.env)}
            process = subprocess.Popen(list(task.argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, cwd=task.workdir or None,
                                       start_new_session=True)
            splitter = LineSplitter()
            try:
                assert process.stdout is not None
                for chunk in iter(lambda: process.stdout.read1(65536), b""):
                    deliver(splitter.feed(chunk), log_file, secrets, on_line, on_progress)
                deliver(splitter.close(), log_file, secrets, on_line, on_progress)
                code = process.wait()
            except BaseException:
                deliver(splitter.close(), log_file, secrets, None, None)
                self._stop(process)
                raise
        return RunResult(exit_code=code if code >= 0 else 128 - code, image_id=LOCAL_ID, log_path=log_path)

    def _stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the command's process group, SIGKILL after the grace period."""
        for sig, wait in ((signal.SIGTERM, self.grace_s), (signal.SIGKILL, None)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
