"""The job wrapper the local runner starts: `python -m tlt_pipe.runners.job JOB_DIR`.

It runs one stage's command detached from tltpipe (a session of its own), so a tltpipe killed with
-9 leaves it running and a later tltpipe can adopt it. JOB_DIR/job.json says what to run; it never
holds a secret: argv carries `{secret:N}` where the key goes, and the wrapper reads the values from
its own environment (TLTPIPE_SECRET_N, readable only by the user), or from the file TLTPIPE_SECRET_FILE
names (a JSON list, mode 0600, for batch systems that record a job's environment; deleted once read), and
fills them in. The command's output is redacted line by line and appended to the stage log, which tltpipe
tails. At the end the
exit code goes to JOB_DIR/exit (written atomically). Stopping a job is signalling its process group
(the runner: SIGTERM, then SIGKILL after the grace period). A batch job Slurm starts a second time
(requeued) runs nothing: it leaves JOB_DIR/requeued for tltpipe, which runs the stage again from where it got.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from tlt_pipe.logstream import LineSplitter, deliver

SECRET_ENV = "TLTPIPE_SECRET_{}"
SECRET_FILE_ENV = "TLTPIPE_SECRET_FILE"
ENV_TOKEN = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_TOKEN = "{{secret:{}}}"


JOBS = ".tltpipe/jobs"  # in a run directory: one folder per job a runner started there


def new_job_dir(labels: Mapping[str, str]) -> Path:
    """A fresh folder, readable only by you, for one job of the run and stage the labels name."""
    root = Path(labels["tltpipe.run"]) / JOBS
    job_dir = root / f"{labels.get('tltpipe.stage', 'task')}-{uuid.uuid4().hex[:8]}"
    job_dir.mkdir(parents=True, mode=0o700)
    return job_dir


def prepared_log(log_path: Path) -> Path:
    """The stage log a job appends to, created if need be."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.touch()
    return log_path


def secret_env(secrets: list[str]) -> dict[str, str]:
    return {SECRET_ENV.format(i): value for i, value in enumerate(secrets)}


def _swap(argv: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    out = []
    for arg in argv:
        for old, new in pairs:
            arg = arg.replace(old, new)
        out.append(arg)
    return out


def tokenized(argv: list[str], secrets: list[str]) -> list[str]:
    """argv with every secret replaced by its token (what job.json holds)."""
    return _swap(argv, [(value, SECRET_TOKEN.format(i)) for i, value in enumerate(secrets)])


def _filled(argv: list[str], secrets: list[str]) -> list[str]:
    """argv with every token replaced by its secret (what the command gets), and every {env:NAME} by that
    variable of the job's environment (what only the node knows, e.g. the GPUs a batch job was given)."""
    filled = _swap(argv, [(SECRET_TOKEN.format(i), value) for i, value in enumerate(secrets)])
    return [ENV_TOKEN.sub(lambda m: os.environ.get(m.group(1), ""), arg) for arg in filled]


REQUEUED = "requeued"  # in a job folder: Slurm started the batch job again; it ran nothing the second time


def main(job_dir: Path) -> int:
    (job_dir / "pid").write_text(str(os.getpid()), encoding="utf-8")  # found again even if tltpipe dies now
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if restarts:
        # Slurm started this batch job again (requeued, or preempted with requeue). Running the command from
        # its start would throw away what it did: tltpipe runs the stage again instead, continuing it.
        (job_dir / REQUEUED).write_text(str(restarts), encoding="utf-8")
        with open(job["log"], "a", encoding="utf-8") as log:
            log.write(f"tltpipe: Slurm started this job again (restart {restarts}); it runs nothing now: tltpipe "
                      "runs the stage again, training from its newest complete checkpoint\n")
        return 0
    secrets = []
    while SECRET_ENV.format(len(secrets)) in os.environ:
        secrets.append(os.environ.pop(SECRET_ENV.format(len(secrets))))
    if SECRET_FILE_ENV in os.environ:
        key_file = Path(os.environ.pop(SECRET_FILE_ENV))
        secrets = json.loads(key_file.read_text(encoding="utf-8"))
        key_file.unlink(missing_ok=True)  # read once: from here on the key is only in this process's memory
    env = {**os.environ, **job["env"]}
    # The command shares the wrapper's process group (a session of its own): whoever stops the job
    # signals the group, the command and whatever it started. The wrapper outlives SIGTERM to keep
    # reading what the command prints while it stops, then records its exit code.
    child = subprocess.Popen(_filled(job["argv"], secrets), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=job["cwd"], env=env)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)  # a handler, not SIG_IGN: the command keeps the default
    splitter = LineSplitter()
    with open(job["log"], "a", encoding="utf-8") as log:
        assert child.stdout is not None
        for chunk in iter(lambda: child.stdout.read1(65536), b""):
            deliver(splitter.feed(chunk), log, secrets, None, None)
        deliver(splitter.close(), log, secrets, None, None)
    code = child.wait()
    code = code if code >= 0 else 128 - code
    partial = job_dir / "exit.partial"
    partial.write_text(str(code), encoding="utf-8")
    os.replace(partial, job_dir / "exit")
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
