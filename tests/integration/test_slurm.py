"""runner.kind: slurm against a real one-node Slurm cluster (scripts/slurm-cluster.sh): every container
stage is a batch job that runs the emulator image with docker on the node.

Run with `make test-slurm` (it starts the cluster); the default `make test` leaves these out."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tltpipe_cli import KEY, STAGES, manifest, start_tltpipe, stage_status, tltpipe, wait_until, write_config

pytestmark = pytest.mark.slurm

SLURM = """\
runner:
  kind: slurm
  gpus: 0
  image: "{image}"
  deploy_image: "{deploy}"
  env: {env}
  slurm: {{gpus: 0, time: "{time}", poll_s: 0.5}}
"""


@pytest.fixture(scope="module", autouse=True)
def cluster():
    try:
        up = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        up = None
    if up is None or up.returncode != 0 or not up.stdout.strip():
        pytest.fail("no Slurm cluster answers here: run scripts/slurm-cluster.sh (make test-slurm does)",
                    pytrace=False)


def _config(sample: Path, images: dict, name: str, *, env: dict | None = None, time_limit: str = "00:10:00") -> Path:
    base = write_config(sample, images, "5.0", filename=name).read_text(encoding="utf-8")
    base = base[:base.index("runner:")] + base[base.index("docker:"):]
    path = sample / name
    path.write_text(base + SLURM.format(image=images["5.0"]["image"], deploy=images["5.0"]["deploy_image"],
                                        env=env or {}, time=time_limit), encoding="utf-8")
    return path


def _slurm_records(job_ids: list[str]) -> str:
    """Everything Slurm keeps about these jobs that a user can read."""
    texts = [subprocess.run(["scontrol", "show", "job", "-d", j], capture_output=True, text=True).stdout
             for j in job_ids]
    texts += [subprocess.run(["squeue", "--me", "-t", "all", "-o", "%i %j %k %o %Z"], capture_output=True,
                             text=True).stdout]
    spool = [p for d in ("/var/spool/slurmctld", "/var/spool/slurmd") for p in Path(d).rglob("*") if p.is_file()]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in spool]
    return "\n".join(texts)


def _queued(run_dir: Path) -> list[str]:
    out = subprocess.run(["squeue", "--me", "-h", "-o", "%i|%k"], capture_output=True, text=True).stdout
    return [line.split("|")[0] for line in out.splitlines() if str(run_dir) in line]


def _emulator_containers() -> list[str]:
    out = subprocess.run(["docker", "ps", "-q", "--filter", "name=tltpipe-"], capture_output=True, text=True)
    return out.stdout.split()


def test_the_whole_chain_runs_as_slurm_jobs_and_a_rerun_skips(emulator_images, sample, tmp_path):
    config = _config(sample, emulator_images, "slurm.yaml")
    keys = Path.home() / ".tltpipe" / "keys"
    keys_before = set(keys.glob("*.json"))
    run_dir = tmp_path / "run"
    first = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--plain", cwd=tmp_path,
                    timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    stages = manifest(run_dir)["stages"]
    assert [n for n in STAGES if stages[n]["status"] == "succeeded"] == STAGES
    jobs = {n: r["job"] for n, r in stages.items() if r.get("image")}  # prepare and deepstream run on the host
    assert all(j["runner"] == "slurm" and j["state"] == "COMPLETED" and j["exit_code"] == 0 and j["node"]
               for j in jobs.values()), jobs
    assert "submitted Slurm job" in first.stdout
    # Every stage whose inputs are ready is submitted: prune's job while evaluate's runs.
    assert first.stdout.index("> prune (") < first.stdout.index("ok evaluate")
    records = _slurm_records([j["id"] for j in jobs.values()])
    assert str(run_dir) in records and KEY not in records  # the key is in no Slurm record
    assert KEY not in first.stdout + first.stderr
    assert not any(KEY in p.read_bytes().decode("utf-8", "replace") for p in run_dir.rglob("*") if p.is_file())
    assert not set(keys.glob("*.json")) - keys_before  # a job deletes its key file when it reads it

    again = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--plain", cwd=tmp_path)
    assert again.returncode == 0 and "submitted Slurm job" not in again.stdout
    assert again.stdout.count("skipped, up to date") == len(STAGES)
    # Recorded jobs are not orphans: gc (and a later run's recovery) leaves them alone.
    listed = tltpipe("gc", "--runner", "slurm", "--dry-run", cwd=tmp_path)
    assert listed.returncode == 0 and str(run_dir) not in listed.stdout


def test_sigterm_cancels_the_training_job(emulator_images, sample, tmp_path):
    config = _config(sample, emulator_images, "slurm-term.yaml", env={"TAO_EMU_HANG": "1"})
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train",
                         "--plain", cwd=tmp_path)
    try:
        wait_until(lambda: stage_status(run_dir, "train") == "running" and bool(_queued(run_dir))
                   and bool(_emulator_containers()), what="the train job", timeout=300)
        # While it runs, Slurm holds its batch script and environment in its spool: no key there either.
        running = _queued(run_dir)
        script = subprocess.run(["scontrol", "write", "batch_script", running[0], "-"], capture_output=True,
                                text=True).stdout
        assert "tlt_pipe.runners.job" in script and KEY not in script + _slurm_records(running)
        assert any(Path("/var/spool/slurmctld").rglob("environment"))  # the stored environment was searched
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        assert proc.returncode == 143
        wait_until(lambda: not _queued(run_dir) and not _emulator_containers(), timeout=15,
                   what="the job and its container gone")
        assert time.monotonic() - started < 30
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert stage_status(run_dir, "train") == "interrupted"


def test_a_job_left_by_a_killed_tltpipe_is_adopted(emulator_images, sample, tmp_path):
    config = _config(sample, emulator_images, "slurm-adopt.yaml", env={"TAO_EMU_EPOCH_SECONDS": "2"})
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train",
                         "--plain", cwd=tmp_path)
    wait_until(lambda: stage_status(run_dir, "train") == "running" and bool(_queued(run_dir)),
               what="the train job", timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    [job_id] = _queued(run_dir)
    again = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", "--plain",
                    cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    record = manifest(run_dir)["stages"]["train"]
    assert record["status"] == "succeeded" and record["reason"] == "adopted from an earlier tltpipe process"
    assert record["job"]["id"] == job_id and record["job"]["state"] == "COMPLETED"
    assert "submitted Slurm job" not in again.stdout and "tltpipe-lpd-train" in again.stdout


def test_a_job_over_its_time_limit_is_diagnosed(emulator_images, sample, tmp_path):
    config = _config(sample, emulator_images, "slurm-timeout.yaml", env={"TAO_EMU_HANG": "1"},
                     time_limit="00:01:00")
    run_dir = tmp_path / "run"
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train",
                     "--plain", cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    record = manifest(run_dir)["stages"]["train"]
    assert record["status"] == "failed" and record["job"]["state"] == "TIMEOUT"
    assert "ended TIMEOUT: it ran out of its time limit (runner.slurm.time)" in result.stderr
    wait_until(lambda: not _emulator_containers(), timeout=30, what="the container gone")


def test_a_requeued_training_job_continues_from_its_newest_checkpoint(emulator_images, sample, tmp_path):
    config = _config(sample, emulator_images, "slurm-requeue.yaml", env={"TAO_EMU_EPOCH_SECONDS": "3"})
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train",
                         "--plain", cwd=tmp_path)
    weights = run_dir / "train" / "weights"
    try:
        wait_until(lambda: weights.is_dir() and len(list(weights.iterdir())) >= 2, what="two checkpoints",
                   timeout=300)
        [job_id] = _queued(run_dir)
        subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    record = manifest(run_dir)["stages"]["train"]
    assert record["status"] == "succeeded" and record["resumed_from"]["epoch"] >= 2, record
    assert [j["id"] for j in record["job"]["requeued"]] == [job_id] and record["job"]["id"] != job_id
    assert record["job"]["state"] == "COMPLETED" and record["metrics"]["epochs"] == 6
    log = (run_dir / "logs" / "train.log").read_text(encoding="utf-8")
    assert f"tltpipe: Slurm requeued job {job_id}; running train again from epoch" in log
    assert f"Slurm requeued job {job_id}; running train again" in out
    assert not _queued(run_dir) and not _emulator_containers()
