"""The local runner: each stage's command as a process on this machine (`runner: {kind: local}`).

For machines that have the TAO tools installed natively (a Jetson, a TAO container tltpipe itself
runs in) and for tests. Paths in the commands are host paths (the workspace is not mounted anywhere).

Each command runs under the job wrapper (runners/job.py) in a session of its own: the wrapper writes
the redacted output to logs/<stage>.log, which this runner tails to the console, and the exit code to
its job folder (<run>/.tltpipe/jobs/<stage>-<id>/). So Ctrl-C or SIGTERM stops the command (through
the wrapper, SIGTERM then SIGKILL), and a tltpipe killed with -9 leaves it running for the next run
to adopt (find_jobs / wait_job) or stop (remove_job). The key never reaches a
file: the wrapper gets it in its environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from threading import Event

from tlt_pipe.logstream import LineSplitter, deliver, follow
from tlt_pipe.runners import job as job_wrapper
from tlt_pipe.runners.base import JobEnd, JobInfo, OnLine
from tlt_pipe.secrets import task_environment
from tlt_pipe.task import RunResult, Task

LOCAL_ID = "local"  # what the manifest records as the image id of a host process
GRACE_S = 10.0


JOBS = job_wrapper.JOBS
POLL_S = 0.1


def _pid(job_dir: Path) -> int | None:
    try:
        return int((job_dir / "pid").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _alive(job_dir: Path) -> bool:
    """Whether the wrapper of this job still runs (checked by its command line, not the pid alone)."""
    pid = _pid(job_dir)
    try:
        return pid is not None and str(job_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _exit_code(job_dir: Path) -> int | None:
    try:
        return int((job_dir / "exit").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class LocalRunner:
    """search: folders find_jobs looks through when the labels name no run directory (tltpipe gc): run
    directories, or folders holding them (runs/)."""

    def __init__(self, *, grace_s: float = GRACE_S, search: Iterable[Path] = ()):
        self.grace_s = grace_s
        self.search = tuple(Path(p) for p in search)

    def image_id(self, image: str) -> str | None:
        return LOCAL_ID

    def ensure_image(self, image: str, on_line: OnLine | None = None) -> str:
        return LOCAL_ID

    # -- running ---------------------------------------------------------------------------

    def run(self, task: Task, *, log_path: Path, labels: Mapping[str, str], on_line: OnLine | None = None,
            on_progress: OnLine | None = None, cancel: Event | None = None) -> RunResult:
        """Run the command to its end under the job wrapper, streaming the log it writes."""
        secrets = [s for s in task.secrets if s]
        log_path = job_wrapper.prepared_log(log_path)
        if shutil.which(task.argv[0]) is None:
            with open(log_path, "a", encoding="utf-8") as log_file:
                deliver(LineSplitter().feed(f"{task.argv[0]}: command not found (the local runner runs TAO's "
                                            "commands from this machine's PATH)\n"), log_file, secrets, on_line, None)
            return RunResult(exit_code=127, image_id=LOCAL_ID, log_path=log_path)
        job_dir = job_wrapper.new_job_dir(labels)
        env = dict(task.env)
        if task.gpus is not None:  # the GPUs this stage was given while others run beside it
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in task.gpus)
        job = {"argv": job_wrapper.tokenized(list(task.argv), secrets), "env": env,
               "cwd": task.workdir or os.getcwd(), "log": str(log_path), "labels": dict(labels),
               "grace_s": self.grace_s}
        (job_dir / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
        env = {**task_environment(dict(os.environ), secrets), "PYTHONUNBUFFERED": "1", **job_wrapper.secret_env(secrets)}
        offset = log_path.stat().st_size
        wrapper = subprocess.Popen([sys.executable, "-m", "tlt_pipe.runners.job", str(job_dir)], env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        (job_dir / "pid").write_text(str(wrapper.pid), encoding="utf-8")
        try:
            follow(log_path, offset, lambda: wrapper.poll() is not None, secrets, on_line, POLL_S, cancel)
        except BaseException:
            self._stop(wrapper.pid, job_dir)
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        code = _exit_code(job_dir)
        shutil.rmtree(job_dir, ignore_errors=True)
        return RunResult(exit_code=wrapper.returncode if code is None else code, image_id=LOCAL_ID,
                         log_path=log_path)

    def _stop(self, pid: int | None, job_dir: Path) -> None:
        """SIGTERM to the job's process group (the wrapper and the command), SIGKILL after the grace period."""
        if pid is None:
            return
        deadline = time.monotonic() + self.grace_s + 5
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        while _alive(job_dir) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if _alive(job_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    # -- jobs left by a tltpipe that died --------------------------------------------------

    def find_jobs(self, labels: Mapping[str, str] | None = None) -> list[JobInfo]:
        """The jobs carrying all the labels: of the run directory they name (tltpipe.run), else of every
        run directory in the search folders."""
        wanted = dict(labels or {})
        if "tltpipe.run" in wanted:
            job_files = sorted((Path(wanted["tltpipe.run"]) / JOBS).glob("*/job.json"))
        else:
            job_files = sorted({f for root in self.search for pattern in (f"{JOBS}/*/job.json", f"*/{JOBS}/*/job.json")
                                for f in root.glob(pattern)})
        found = []
        for job_file in job_files:
            try:
                job = json.loads(job_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if all(job["labels"].get(k) == v for k, v in wanted.items()):
                status = "running" if _alive(job_file.parent) else "exited"
                found.append(JobInfo(id=str(job_file.parent), name=job_file.parent.name, labels=job["labels"],
                                     status=status))
        return found

    def wait_job(self, job_id: str, secrets: Iterable[str] = ()) -> JobEnd:
        """Wait for an adopted job: (exit code, its whole log, False). A job that died without an exit
        code (the machine went down) counts as killed (137)."""
        job_dir = Path(job_id)
        while _alive(job_dir):
            time.sleep(POLL_S)
        job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
        code = _exit_code(job_dir)
        text = Path(job["log"]).read_text(encoding="utf-8", errors="replace")
        return JobEnd(137 if code is None else code, text)

    def remove_job(self, job_id: str) -> None:
        """Stop an adopted job if it still runs, and forget it."""
        job_dir = Path(job_id)
        if _alive(job_dir):
            self._stop(_pid(job_dir), job_dir)
        shutil.rmtree(job_dir, ignore_errors=True)
