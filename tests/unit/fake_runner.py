"""A fake runner for executor and sweep tests: each task runs by calling the TAO emulator's entry point in
this process (no Docker, no subprocess), so stages see the files and logs real TAO leaves; the runner-level
faults (Ctrl-C in the middle of a task, a job found after a crash, a requeued job) are the fake's own."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

from tlt_pipe import provenance
from tlt_pipe.runners.base import Cancelled, JobEnd, JobInfo
from tlt_pipe.secrets import redact
from tlt_pipe.task import RunResult, Task

EMULATOR = Path(__file__).resolve().parents[1] / "emulator"
KEY = "s3cr3t-k3y"
TOOLKIT = "3.21.11"
_EMULATOR = threading.Lock()
_IMAGE_ROLE = re.compile(r":(\d+\.\d+\.\d+)-(pyt|deploy)$")


class FakeRunner:
    """Runs a task by calling the emulator in process. interrupt_in: the stage during which Ctrl-C
    arrives (after its first epochs are written); jobs: what find_jobs reports (left by a dead tltpipe);
    meet: stages that must be running at the same time (each waits for the others before it runs); hold:
    stages that run until they are cancelled; requeue: stages whose first job the scheduler takes away
    after two checkpoints (as Slurm does when it preempts or requeues a job)."""

    def __init__(self, interrupt_in: str | None = None, meet: tuple[str, ...] = (), hold: tuple[str, ...] = (),
                 requeue: tuple[str, ...] = ()):
        self.ran: list[str] = []
        self.interrupt_in = interrupt_in
        self.jobs: dict[str, tuple[JobInfo, tuple[int, str, bool]]] = {}
        self.removed: list[str] = []
        self.meet = meet
        self._barrier = threading.Barrier(len(meet), timeout=10) if meet else None
        self.tasks: dict[str, Task] = {}
        self.cancelled: list[str] = []
        self.hold = hold
        self.requeue = list(requeue)
        self.active = self.most = 0
        self._lock = threading.Lock()

    def run(self, task: Task, *, log_path: Path, labels: Mapping[str, str], on_line=None, on_progress=None,
            cancel=None):
        stage = labels["tltpipe.stage"]
        with self._lock:
            self.ran.append(stage)
            self.tasks[stage] = task
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            return self._run(stage, task, log_path, on_line, cancel)
        finally:
            with self._lock:
                self.active -= 1

    def _run(self, stage: str, task: Task, log_path: Path, on_line, cancel) -> RunResult:
        if stage in self.meet:
            self._barrier.wait()  # BrokenBarrierError unless the others run meanwhile
        if stage in self.hold:
            assert cancel is not None and cancel.wait(10), f"{stage} was never cancelled"
            self.cancelled.append(stage)
            raise Cancelled()
        code, text = self.execute(task)
        with open(log_path, "a", encoding="utf-8") as log:
            for line in text.splitlines():
                log.write(line + "\n")
                if on_line:
                    on_line(line)
        weights = log_path.parents[1] / stage / "weights"
        if stage == self.interrupt_in or stage in self.requeue:
            for newest in sorted(weights.iterdir())[2:] if weights.is_dir() else []:  # after two checkpoints
                newest.unlink()
        if stage in self.requeue:
            self.requeue.remove(stage)
            return RunResult(exit_code=143, image_id="sha256:emulated", log_path=log_path,
                             requeue="Slurm requeued the job", job={"runner": "fake", "id": "1", "state": "REQUEUED"})
        if stage == self.interrupt_in:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C; tltpipe cancels the task
            assert cancel is not None and cancel.wait(10), "the task was never cancelled"
            self.cancelled.append(stage)
            raise Cancelled()
        return RunResult(exit_code=code, image_id="sha256:emulated", log_path=log_path)

    @staticmethod
    def execute(task: Task) -> tuple[int, str]:
        """One emulated task at a time (stdout is redirected process-wide). The emulator's signal handlers
        are not installed: Python allows them in the main thread only (the executor runs tasks in
        others), and in the main thread they would outlive the task and swallow the tests' Ctrl-C."""
        from tao_emulator.main import entry

        out = io.StringIO()
        no_handlers = mock.patch("signal.signal", lambda signum, handler: signal.getsignal(signum))
        # A PyTorch or Deploy image of a release the emulator has (`...:6.26.3-pyt`) is that emulator image;
        # others keep the version and role the test set.
        from tao_emulator.catalog import VERSIONS

        tagged = _IMAGE_ROLE.search(task.image)
        known = tagged and tagged[1] in VERSIONS
        image_env = {"TAO_EMU_VERSION": tagged[1], "TAO_EMU_ROLE": tagged[2]} if known else {}
        with _EMULATOR, no_handlers, mock.patch.dict(os.environ, image_env), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out):
            argv = list(task.argv)
            if argv[:2] == ["sh", "-c"] and argv[3:4] == ["tltpipe-probe"]:  # provenance.probed: its two lines, then the task
                argv = argv[4:]
                gpu = dict(task.env).get("TAO_EMU_GPU", "fake GPU, 0.0")
                print(f"{provenance.TAG} gpu: {gpu}\n{provenance.TAG} tensorrt: 8.6.1")
            try:
                entry(argv[0], argv[1:])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return code, redact(out.getvalue(), task.secrets)

    def image_id(self, image: str) -> str | None:
        return "sha256:emulated"

    def ensure_image(self, image: str, on_line=None) -> str:
        return "sha256:emulated"

    def find_jobs(self, labels=None) -> list[JobInfo]:
        return [info for info, _ in self.jobs.values()
                if all(info.labels.get(k) == v for k, v in (labels or {}).items())]

    def wait_job(self, job_id: str, secrets=()) -> JobEnd:
        code, text, oom = self.jobs[job_id][1]
        return JobEnd(code, text, oom, {"runner": "fake", "id": job_id, "state": "COMPLETED", "exit_code": code})

    def remove_job(self, job_id: str) -> None:
        self.removed.append(job_id)
        self.jobs.pop(job_id, None)
