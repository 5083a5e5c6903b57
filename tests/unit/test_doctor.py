"""tltpipe doctor: verdicts from facts (pure), and the command with a stand-in engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tlt_pipe import cli
from tlt_pipe.doctor import GIB, Facts, judge, probe_writable, size_bytes
from tlt_pipe.errors import DockerUnavailable

ENGINE = {"version": "24.0.7", "api_version": "1.43", "runtimes": ["nvidia", "runc"], "endpoint": "unix:///x"}


def levels(facts: Facts) -> dict[str, str]:
    return {c.name: c.level for c in judge(facts)}


def test_a_ready_machine_is_all_ok(tmp_path):
    facts = Facts(engine=ENGINE, gpu_names=["GPU 0: A100"], run_dir=tmp_path, free_bytes=100 * GIB, writable=True,
                  images={"tao:5.0": True}, key_set=True)
    checks = judge(facts)
    assert {c.level for c in checks} == {"ok"}
    assert any("engine 24.0.7 (API 1.43)" in c.detail for c in checks)


def test_problems_come_with_their_fix(tmp_path):
    facts = Facts(engine=None, engine_error="connection refused", shm_size="64m", run_dir=tmp_path,
                  free_bytes=GIB // 2, writable=False, write_error="Permission denied", key_required=True,
                  toolkit="4.0")
    checks = {c.name: c for c in judge(facts)}
    assert {n: c.level for n, c in checks.items()} == {"docker": "fail", "gpus": "warn", "shm": "warn",
                                                       "disk": "fail", "write": "fail", "key": "fail"}
    assert all(c.fix for c in checks.values())
    assert "TLTPIPE_KEY" in checks["key"].fix


def test_gpu_runtime_only_matters_when_gpus_are_requested(tmp_path):
    no_nvidia = {**ENGINE, "runtimes": ["runc"]}
    base = dict(engine=no_nvidia, run_dir=tmp_path, free_bytes=100 * GIB, writable=True, key_set=True)
    assert levels(Facts(**base, gpus_requested=True))["nvidia runtime"] == "fail"
    assert levels(Facts(**base, gpus_requested=False))["nvidia runtime"] == "ok"
    assert levels(Facts(**base, images={"tao": False}))["image"] == "warn"


def test_sizes_and_write_probe(tmp_path):
    assert size_bytes("16G") == 16 * GIB and size_bytes("512m") == 512 << 20 and size_bytes("x") is None
    assert probe_writable(tmp_path / "not" / "yet") == (True, "")


class FakeRunner:
    def __init__(self, reachable=True):
        self.reachable = reachable

    def engine_info(self):
        if not self.reachable:
            raise DockerUnavailable("cannot reach the Docker engine at unix:///x: refused")
        return {**ENGINE, "runtimes": ["runc"]}

    def image_id(self, image):
        return "sha256:1" if image.endswith("deploy") else None


def test_doctor_command(monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_docker_runner_default", lambda: FakeRunner())
    monkeypatch.setenv("TLTPIPE_KEY", "sekrit-value")
    result = CliRunner().invoke(cli.main, ["doctor", "--toolkit", "5.0", "--run-dir", str(tmp_path), "--json"])
    checks = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1  # GPUs requested by default, no nvidia runtime
    assert {c["check"] for c in checks} >= {"docker", "nvidia runtime", "gpus", "shm", "disk", "write", "image", "key"}
    assert "sekrit-value" not in result.output
    images = [c for c in checks if c["check"] == "image"]
    assert [c["level"] for c in images] == ["warn", "ok"]

    monkeypatch.setattr(cli, "_docker_runner_default", lambda: FakeRunner(reachable=False))
    result = CliRunner().invoke(cli.main, ["doctor", "--run-dir", str(tmp_path)], env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    assert "fail docker" in result.output and "fix: start dockerd" in result.output


def test_doctor_with_a_config_without_gpus(monkeypatch, tmp_path):
    (tmp_path / "c.yaml").write_text("network: ssd\nname: x\ndataset: {path: d}\n"
                                     "runner: {gpus: 0, image: tao:tf, deploy_image: tao:deploy}\n")
    monkeypatch.setattr(cli, "_runner", lambda config: FakeRunner())
    monkeypatch.setattr("tlt_pipe.doctor.gpu_names", lambda: None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["doctor", "--config", "c.yaml", "--json"], env={"TLTPIPE_KEY": "k"})
    checks = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0, result.output
    assert [c["detail"] for c in checks if c["check"] == "image"][0].startswith("tao:tf is not present")
    assert Path(tmp_path / "runs").exists() is False  # doctor writes nothing
    both = CliRunner().invoke(cli.main, ["doctor", "--config", "c.yaml", "--toolkit", "4.0"])  # once: 4.0 ignored
    assert both.exit_code == 2 and both.stderr.strip() == \
        "tltpipe: error: --toolkit and --config: the config names its toolkit; give one or the other"


def test_doctor_for_the_local_runner_checks_the_commands_on_path(monkeypatch, tmp_path):
    """runner.kind: local needs no Docker: doctor looks for every command the plan runs on PATH instead."""
    (tmp_path / "c.yaml").write_text("network: ssd\ntoolkit: '3.21.11'\nname: x\ndataset: {path: d}\n"
                                     "runner: {kind: local, gpus: 0}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssd").write_text("#!/bin/sh\n")
    (bin_dir / "ssd").chmod(0o755)
    monkeypatch.setattr("tlt_pipe.runners.docker_runner", lambda config: pytest.fail("the local runner needs no Docker"))
    monkeypatch.setattr("tlt_pipe.doctor.gpu_names", lambda: None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["doctor", "--config", "c.yaml", "--json"],
                                env={"TLTPIPE_KEY": "k", "PATH": str(bin_dir)})
    checks = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1  # the converter is missing
    assert {c["check"] for c in checks} >= {"command", "gpus", "disk", "write", "key"}
    assert not {"docker", "shm", "image"} & {c["check"] for c in checks}
    commands = {c["detail"].split()[0]: c["level"] for c in checks if c["check"] == "command"}
    assert commands == {"ssd": "ok", "converter": "fail"}


def test_slurm_checks_name_the_partition_and_a_run_directory_the_nodes_may_not_see(tmp_path):
    base = dict(runner="slurm", commands={"sbatch": True, "squeue": True, "scontrol": True, "scancel": True},
                partitions={"gpu*": "up", "debug": "down"}, nodes=["n1", "n2"], run_dir=tmp_path,
                free_bytes=100 * GIB, writable=True, key_set=True, gpu_names=["GPU 0: A100"])
    ok = {c.name: c for c in judge(Facts(**base, filesystem="lustre"))}
    assert (ok["partition"].level, ok["partition"].detail) == ("ok", "gpu is up")
    assert ok["shared run dir"].level == "ok" and "docker" not in ok
    local_disk = {c.name: c for c in judge(Facts(**base, filesystem="ext2/ext3", partition="debug"))}
    assert local_disk["partition"].level == "fail" and local_disk["shared run dir"].level == "warn"
    unknown = {c.name: c for c in judge(Facts(**base, filesystem="nfs", partition="a100"))}
    assert unknown["partition"].fix == "set runner.slurm.partition to one of gpu, debug"
    no_client = judge(Facts(**{**base, "commands": {"sbatch": False, "squeue": True}}, filesystem="nfs"))
    assert no_client[0].level == "fail" and no_client[0].detail == "sbatch not on PATH"
