"""The Slurm runner's pure parts: the command a job runs on its node, Slurm's answers, the config section."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tlt_pipe.config import SlurmConfig, parse_config
from tlt_pipe.errors import ConfigError
from tlt_pipe.runners import job
from tlt_pipe.runners.slurm import SlurmRunner, container_argv, parse_scontrol
from tlt_pipe.task import Mount, Task

TASK = Task(image="nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5", argv=("ssd", "train", "-k", "s3cret"),
            mounts=(Mount(host="/shared/run", container="/tltpipe/run"),
                    Mount(host="/data/w.hdf5", container="/tltpipe/inputs/pretrained/w.hdf5", read_only=True)),
            env=(("TF_CPP_MIN_LOG_LEVEL", "2"),), workdir="/tltpipe/run", secrets=("s3cret",))


def test_docker_on_the_node_gets_the_jobs_gpus_mounts_and_env():
    argv = container_argv(TASK, container="docker", shm_size="16G", user="1000:1000", gpus=2, name="tltpipe-x")
    assert argv[:6] == ["docker", "run", "--rm", "--init", "--name", "tltpipe-x"]
    assert argv[argv.index("--gpus") + 1] == "device={env:CUDA_VISIBLE_DEVICES}"
    assert "/shared/run:/tltpipe/run" in argv and "/data/w.hdf5:/tltpipe/inputs/pretrained/w.hdf5:ro" in argv
    assert argv[argv.index("-e") + 1] == "TF_CPP_MIN_LOG_LEVEL=2" and argv[-5:] == [TASK.image, *TASK.argv]
    assert "--gpus" not in container_argv(TASK, container="docker", gpus=0)


def test_pyxis_runs_the_image_through_srun():
    argv = container_argv(TASK, container="pyxis")
    assert argv[:2] == ["srun", f"--container-image={TASK.image}"]
    assert ("--container-mounts=/shared/run:/tltpipe/run,/data/w.hdf5:/tltpipe/inputs/pretrained/w.hdf5:ro"
            in argv)
    assert argv[-4:] == list(TASK.argv)


def test_the_wrapper_fills_in_secrets_and_what_only_the_node_knows(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    stored = job.tokenized(["--gpus", "device={env:CUDA_VISIBLE_DEVICES}", "-k", "s3cret"], ["s3cret"])
    assert "s3cret" not in " ".join(stored)
    assert job._filled(stored, ["s3cret"]) == ["--gpus", "device=2,3", "-k", "s3cret"]


def test_scontrol_lines_are_read_field_by_field():
    info = parse_scontrol("JobId=12 JobName=tltpipe-lpd-train JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 "
                          "NodeList=gpu-01 Comment={\"tltpipe\":{}}")
    assert (info["JobState"], info["ExitCode"], info["NodeList"]) == ("TIMEOUT", "0:15", "gpu-01")


def test_the_slurm_section_is_checked(tmp_path):
    text = "network: ssd\nname: x\ndataset: {path: d}\nrunner: {kind: slurm, slurm: %s}\n"
    config = parse_config(text % "{partition: gpu, gpus: 2, mem: 32G, extra: [--qos=high]}", source="c.yaml",
                          base_dir=tmp_path)
    assert (config.runner.slurm.partition, config.runner.slurm.gpus, config.runner.slurm.container) == ("gpu", 2,
                                                                                                       "docker")
    with pytest.raises(ConfigError, match="runner.slurm.container"):
        parse_config(text % "{container: singularity}", source="c.yaml", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="runner.slurm.gpus"):
        parse_config(text % "{gpus: -1}", source="c.yaml", base_dir=tmp_path)


def test_a_machine_without_slurm_has_no_slurm_jobs(monkeypatch, tmp_path):
    from tlt_pipe.config import SlurmConfig
    from tlt_pipe.runners.slurm import SlurmRunner

    monkeypatch.setenv("PATH", str(tmp_path))  # no squeue here
    assert SlurmRunner(SlurmConfig()).find_jobs() == []


def test_a_refused_submission_leaves_no_key_file_or_job_folder(monkeypatch, tmp_path):
    """sbatch failing (a bad partition, slurmctld down) is a clear error, and nothing of the job stays."""
    from tlt_pipe.config import SlurmConfig
    from tlt_pipe.runners.slurm import SlurmRunner, SlurmUnavailable

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpu' >&2\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    runner = SlurmRunner(SlurmConfig(partition="gpu", key_dir=tmp_path / "keys"))
    with pytest.raises(SlurmUnavailable, match="invalid partition specified: gpu"):
        runner.run(TASK, log_path=tmp_path / "run" / "logs" / "train.log",
                   labels={"tltpipe.run": str(tmp_path / "run"), "tltpipe.stage": "train"})
    assert list((tmp_path / "keys").iterdir()) == [] and list((tmp_path / "run" / ".tltpipe" / "jobs").iterdir()) == []


def test_a_batch_job_slurm_starts_again_runs_nothing_and_says_so(tmp_path):
    ran = tmp_path / "ran"
    log = tmp_path / "train.log"
    (tmp_path / "job.json").write_text(json.dumps({"argv": ["touch", str(ran)], "env": {}, "cwd": str(tmp_path),
                                                   "log": str(log), "labels": {}}), encoding="utf-8")
    def wrapper(**env):  # as a batch script starts it
        return subprocess.run([sys.executable, "-m", "tlt_pipe.runners.job", str(tmp_path)], timeout=60,
                              env={**os.environ, **env}).returncode

    assert wrapper(SLURM_RESTART_COUNT="1") == 0
    assert not ran.exists()  # training from scratch would throw away its checkpoints
    assert (tmp_path / job.REQUEUED).read_text(encoding="utf-8") == "1"
    assert "Slurm started this job again (restart 1)" in log.read_text(encoding="utf-8")

    assert wrapper(SLURM_RESTART_COUNT="0") == 0 and ran.exists()  # a first start runs the command


@pytest.mark.parametrize("state, code, again", [
    ("OUT_OF_MEMORY", 137, None),
    ("TIMEOUT", 143, None),
    ("PREEMPTED", 143, "Slurm job 7 ended PREEMPTED (it was preempted by a job of higher priority)"),
    ("NODE_FAIL", 143, "Slurm job 7 ended NODE_FAIL (its node failed)"),
    ("COMPLETED", 0, None),
])
def test_how_a_job_ended_is_read_from_slurm(tmp_path, monkeypatch, state, code, again):
    runner = SlurmRunner(SlurmConfig())
    monkeypatch.setattr(runner, "describe", lambda job_id: {"JobState": state, "ExitCode": "0:0", "NodeList": "n1"})
    log = tmp_path / "train.log"
    log.write_text("", encoding="utf-8")
    exit_code, record, requeue = runner._ending("7", tmp_path, log, requeued=False)
    assert (exit_code, record["state"], record["node"], requeue) == (code, state, "n1", again)
    assert (f"ended {state}: " in log.read_text(encoding="utf-8")) == (state != "COMPLETED")


def test_a_job_its_wrapper_saw_started_again_was_requeued(tmp_path, monkeypatch):
    runner = SlurmRunner(SlurmConfig())
    monkeypatch.setattr(runner, "describe", lambda job_id: {"JobState": "COMPLETED", "ExitCode": "0:0"})
    (tmp_path / job.REQUEUED).write_text("1", encoding="utf-8")
    exit_code, record, requeue = runner._ending("7", tmp_path, tmp_path / "train.log", requeued=False)
    assert (exit_code, record["state"], requeue) == (143, "REQUEUED", "Slurm requeued job 7")


def test_the_job_reads_its_key_file_once_and_deletes_it(tmp_path):
    key_file = tmp_path / "k.json"
    key_file.write_text(json.dumps(["s3cret"]), encoding="utf-8")
    seen, log = tmp_path / "seen", tmp_path / "train.log"
    argv = job.tokenized(["sh", "-c", f"echo s3cret > {seen}; echo key s3cret"], ["s3cret"])
    (tmp_path / "job.json").write_text(json.dumps({"argv": argv, "env": {}, "cwd": str(tmp_path), "log": str(log),
                                                   "labels": {}}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SLURM_RESTART_COUNT"}
    done = subprocess.run([sys.executable, "-m", "tlt_pipe.runners.job", str(tmp_path)], timeout=60,
                          env={**env, job.SECRET_FILE_ENV: str(key_file)})
    assert done.returncode == 0 and seen.read_text().strip() == "s3cret"  # the command got the key
    assert not key_file.exists()  # and no file holds it any more
    assert "s3cret" not in log.read_text(encoding="utf-8")
