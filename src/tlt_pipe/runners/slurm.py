"""The Slurm runner: each container stage as one batch job (`runner: {kind: slurm}`).

A job runs the job wrapper (runners/job.py) on its node, which runs the stage's image there, with
`docker run` (runner.slurm.container: docker) or pyxis (`srun --container-image`). The wrapper
appends the redacted output to logs/<stage>.log in the run directory, which must be on a filesystem
the nodes share; tltpipe tails it, as for the other runners, and asks squeue/scontrol how the job
stands.

The key never reaches Slurm: not in the sbatch line, the batch script, the job's comment or its
environment (tltpipe's own environment is passed on without it). It goes into a file readable only by
you, outside the run directory (runner.slurm.key_dir), whose path the job gets; the file is deleted when
the stage ends. The job's comment holds the labels (run directory, stage) that let a later tltpipe
find it again after a crash.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from threading import Event
from typing import Any

from tlt_pipe.errors import TltPipeError
from tlt_pipe.logstream import follow
from tlt_pipe.runners import job as job_wrapper
from tlt_pipe.runners.base import JobEnd, JobInfo, OnLine
from tlt_pipe.secrets import redact, task_environment
from tlt_pipe.task import RunResult, Task

MARK = "tltpipe"  # the key of the job comment's JSON object
# Job states after which a job runs no more (squeue/scontrol spelling).
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
# What an end state means, for the log (the exit code alone does not tell).
ENDINGS = {
    "TIMEOUT": "it ran out of its time limit (runner.slurm.time)",
    "OUT_OF_MEMORY": "it used more memory than it was given (runner.slurm.mem)",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "it was preempted by a job of higher priority",
    "CANCELLED": "it was cancelled (scancel)",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "it reached its deadline",
}
# End states after which the stage runs again (retries permitting): the job was taken away, not failed.
AGAIN = {"PREEMPTED", "NODE_FAIL"}
STOP_WAIT_S = 15.0


class SlurmUnavailable(TltPipeError):
    """sbatch, squeue or scontrol cannot be used."""

    exit_code = 3


def container_argv(task: Task, *, container: str, shm_size: str | None = None, user: str | None = None,
                   gpus: int = 0, name: str = "tltpipe") -> list[str]:
    """The command a job runs on its node for a task: its image started by docker, or by pyxis."""
    if container == "pyxis":
        mounts = ",".join(f"{m.host}:{m.container}" + (":ro" if m.read_only else "") for m in task.mounts)
        argv = ["srun", f"--container-image={task.image}"]
        argv += [f"--container-mounts={mounts}"] if mounts else []
        argv += [f"--container-workdir={task.workdir}"] if task.workdir else []
        return argv + list(task.argv)
    argv = ["docker", "run", "--rm", "--init", "--name", name]
    if gpus:  # the GPUs Slurm gave the job
        argv += ["--gpus", "device={env:CUDA_VISIBLE_DEVICES}"]
    if shm_size:
        argv += ["--shm-size", shm_size]
    if user:
        argv += ["--user", user]
    for mount in task.mounts:
        argv += ["-v", f"{mount.host}:{mount.container}" + (":ro" if mount.read_only else "")]
    for key, value in task.env:
        argv += ["-e", f"{key}={value}"]
    if task.workdir:
        argv += ["-w", task.workdir]
    return argv + [task.image, *task.argv]


def parse_scontrol(text: str) -> dict[str, str]:
    """`scontrol show job -o ID`: one line of Key=Value fields."""
    fields = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


class SlurmRunner:
    """settings: runner.slurm (config.SlurmConfig); shm_size/user: the docker: settings a job's container gets."""

    def __init__(self, settings: Any, *, shm_size: str | None = "16G", user: str | None = None):
        self.settings = settings
        self.shm_size = shm_size
        self.user = f"{os.getuid()}:{os.getgid()}" if user is None else (user or None)

    # -- talking to Slurm ------------------------------------------------------------------

    def _slurm(self, argv: list[str], env: Mapping[str, str] | None = None) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        except FileNotFoundError:
            raise SlurmUnavailable(f"{argv[0]} is not installed here (runner.kind: slurm submits with sbatch)") from None
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"{argv[0]} did not answer within 60 s") from None
        if done.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(argv[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def describe(self, job_id: str) -> dict[str, str] | None:
        """Slurm's view of a job (JobState, ExitCode, NodeList, ...), or None when it no longer knows it."""
        try:
            out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                                 timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_scontrol(out.stdout) if out.returncode == 0 and out.stdout.strip() else None

    def _ended(self, job_id: str) -> bool:
        info = self.describe(job_id)
        return info is None or info.get("JobState", "").split()[0] in ENDED

    # -- running ---------------------------------------------------------------------------

    def image_id(self, image: str) -> str | None:
        return f"slurm:{image}"  # the image is pulled on the node the job lands on

    def ensure_image(self, image: str, on_line: OnLine | None = None) -> str:
        if shutil.which("sbatch") is None:
            raise SlurmUnavailable("sbatch is not installed here (runner.kind: slurm submits each stage with sbatch)")
        return f"slurm:{image}"

    def run(self, task: Task, *, log_path: Path, labels: Mapping[str, str], on_line: OnLine | None = None,
            on_progress: OnLine | None = None, cancel: Event | None = None) -> RunResult:
        secrets = [s for s in task.secrets if s]
        log_path = job_wrapper.prepared_log(log_path)
        run_dir = Path(labels["tltpipe.run"])
        job_dir = job_wrapper.new_job_dir(labels)
        tag = job_dir.name.rsplit("-", 1)[1]
        key_file = self._key_file(tag, secrets)
        name = f"tltpipe-{labels.get('tltpipe.name', 'run')}-{labels.get('tltpipe.stage', 'task')}"
        argv = container_argv(task, container=self.settings.container, shm_size=self.shm_size, user=self.user,
                              gpus=self.settings.gpus, name=f"{name}-{tag}")
        job = {"argv": job_wrapper.tokenized(argv, secrets), "env": {}, "cwd": str(run_dir), "log": str(log_path),
               "labels": dict(labels)}
        (job_dir / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
        script = job_dir / "batch.sh"
        script.write_text(f"#!/bin/bash\nexec {shlex.quote(sys.executable)} -m tlt_pipe.runners.job "
                          f"{shlex.quote(str(job_dir))}\n", encoding="utf-8")
        comment = json.dumps({MARK: dict(labels), "job_dir": str(job_dir), "log": str(log_path),
                              "key_file": str(key_file or "")},
                             separators=(",", ":"))
        offset = log_path.stat().st_size
        try:
            job_id = self._submit(script, job_dir, name, comment, key_file, secrets)
        except BaseException:  # not submitted: nothing may be left behind, the key file least of all
            self._forget(job_dir, key_file)
            raise
        (job_dir / "slurm_id").write_text(job_id, encoding="utf-8")
        if on_line:
            on_line(f"tltpipe: submitted Slurm job {job_id} ({name})")
        requeued: list[bool] = []
        try:
            follow(log_path, offset, lambda: self._over(job_id, requeued), secrets, on_line, self.settings.poll_s,
                   cancel)
            if requeued:  # it waits to start again from scratch: tltpipe runs the stage again instead
                self.remove_job(job_id, forget=False)
        except BaseException:
            self.remove_job(job_id)
            raise
        code, record, requeue = self._ending(job_id, job_dir, log_path, requeued=bool(requeued))
        self._forget(job_dir, key_file)
        return RunResult(exit_code=code, image_id=f"slurm:{task.image}", log_path=log_path,
                         oom_killed=record["state"] == "OUT_OF_MEMORY", job=record, requeue=requeue)

    def _over(self, job_id: str, requeued: list[bool]) -> bool:
        """Whether a job has ended, or was requeued (it waits to start again; requeued says so)."""
        info = self.describe(job_id)
        if info is None:
            return True
        state = info.get("JobState", "").split()[0]
        if state == "PENDING" and int(info.get("Restarts", "0") or 0) > 0:
            requeued.append(True)
            return True
        return state in ENDED

    def _key_file(self, tag: str, secrets: list[str]) -> Path | None:
        if not secrets:
            return None
        folder = Path(self.settings.key_dir or Path.home() / ".tltpipe" / "keys").expanduser()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{tag}.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(secrets, handle)
        return path

    def _submit(self, script: Path, job_dir: Path, name: str, comment: str, key_file: Path | None,
                secrets: list[str]) -> str:
        s = self.settings
        argv = ["sbatch", "--parsable", "--job-name", name, "--output", str(job_dir / "slurm.out"),
                "--chdir", str(job_dir), "--comment", comment]
        argv += ["--partition", s.partition] if s.partition else []
        argv += [f"--gpus={s.gpus}"] if s.gpus else []
        argv += ["--time", s.time] if s.time else []
        argv += ["--account", s.account] if s.account else []
        argv += [f"--cpus-per-task={s.cpus_per_task}"] if s.cpus_per_task else []
        argv += [f"--mem={s.mem}"] if s.mem else []
        argv += [*s.extra, str(script)]
        # The job gets this environment (sbatch --export=ALL), less the keys and anything holding one.
        env = task_environment(dict(os.environ), secrets)
        if key_file is not None:
            env[job_wrapper.SECRET_FILE_ENV] = str(key_file)
        out = self._slurm(argv, env=env)
        return out.strip().split(";")[0]

    def _ending(self, job_id: str, job_dir: Path, log_path: Path, *,
                requeued: bool) -> tuple[int, dict[str, Any], str | None]:
        """How a job ended: the exit code (the wrapper's, else Slurm's), the job as the manifest records it
        ({runner, id, node, state, exit_code}), and why the stage should run again (requeued: tltpipe saw
        it requeued; preempted; its node failed), else None. A state that explains the end (TIMEOUT,
        OUT_OF_MEMORY, ...) is written into the stage log."""
        info = self.describe(job_id) or {}
        state = info.get("JobState", "UNKNOWN").split()[0]
        try:
            code = int((job_dir / "exit").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            status, _, signal = info.get("ExitCode", "0:9").partition(":")  # exit code:signal
            code = int(status or 0) or (128 + int(signal) if int(signal or 0) else 0)
        requeue = None
        if requeued or (job_dir / job_wrapper.REQUEUED).exists():
            code, state, requeue = code or 143, "REQUEUED", f"Slurm requeued job {job_id}"
        elif state in ENDINGS:
            if code == 0:
                code = 137 if state == "OUT_OF_MEMORY" else 143
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"tltpipe: Slurm job {job_id} ended {state}: {ENDINGS[state]}\n")
            requeue = f"Slurm job {job_id} ended {state} ({ENDINGS[state]})" if state in AGAIN else None
        return code, {"runner": "slurm", "id": job_id, "node": info.get("NodeList"), "state": state,
                      "exit_code": code}, requeue

    @staticmethod
    def _forget(job_dir: Path, key_file: Path | None) -> None:
        if key_file is not None:
            key_file.unlink(missing_ok=True)
        shutil.rmtree(job_dir, ignore_errors=True)

    # -- jobs left by a tltpipe that died --------------------------------------------------

    def find_jobs(self, labels: Mapping[str, str] | None = None) -> list[JobInfo]:
        """Your Slurm jobs tltpipe submitted carrying all the labels: queued, running, or ended but not yet
        recorded (their job folder is still there); none where Slurm is not installed."""
        if shutil.which("squeue") is None:
            return []
        out = self._slurm(["squeue", "--me", "-h", "-t", "all", "-o", "%i|%T|%j|%k"])
        found = []
        for line in out.splitlines():
            job_id, state, name, comment = (line.split("|", 3) + ["", "", "", ""])[:4]
            try:
                meta = json.loads(comment)
            except ValueError:
                continue
            tags = meta.get(MARK) if isinstance(meta, dict) else None
            if state in ENDED and not Path(str(meta.get("job_dir", ""))).is_dir():
                continue  # concluded: tltpipe recorded it and removed its job folder; nothing is left of it
            if isinstance(tags, dict) and all(tags.get(k) == v for k, v in (labels or {}).items()):
                status = "exited" if state in ENDED else state.lower()
                found.append(JobInfo(id=job_id, name=name, status=status, labels=tags))
        return found

    def wait_job(self, job_id: str, secrets: Iterable[str] = ()) -> JobEnd:
        """Wait for an adopted job to end: its exit code, its whole log, and the job as the manifest records it."""
        meta = self._comment(job_id)
        requeued: list[bool] = []
        while not self._over(job_id, requeued):
            time.sleep(self.settings.poll_s)
        if requeued:
            self.remove_job(job_id, forget=False)
        log_path = Path(meta.get("log", "/nonexistent"))
        job_dir = Path(meta.get("job_dir", "/nonexistent"))
        code, record, _ = self._ending(job_id, job_dir, log_path, requeued=bool(requeued))
        text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        return JobEnd(code, redact(text, [s for s in secrets if s]), record["state"] == "OUT_OF_MEMORY", record)

    def remove_job(self, job_id: str, *, forget: bool = True) -> None:
        """Cancel a job (and wait until Slurm has stopped it), and delete its key file and job folder
        (forget: False keeps them)."""
        meta = self._comment(job_id)
        if not self._ended(job_id):
            subprocess.run(["scancel", job_id], capture_output=True, timeout=60)
            deadline = time.monotonic() + STOP_WAIT_S
            while not self._ended(job_id) and time.monotonic() < deadline:
                time.sleep(0.5)
        key = meta.get("key_file")
        if forget:
            self._forget(Path(meta.get("job_dir", "/nonexistent")), Path(key) if key else None)

    def _comment(self, job_id: str) -> dict[str, Any]:
        info = self.describe(job_id) or {}
        try:
            meta = json.loads(info.get("Comment", "{}"))
        except ValueError:
            meta = {}
        return meta if isinstance(meta, dict) and isinstance(meta.get(MARK), dict) else {MARK: {}}

