"""runner: {kind: local} runs every stage as a process on this machine, through the same planner, logs,
manifest, skip and Ctrl-C handling as Docker. TAO's commands are the emulator's, installed on a PATH
of this test's own (no Docker involved), which also makes these the executor's fast tests: skip,
a changed value re-running what depends on it, failure, interruption, resume and adoption."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tltpipe_cli import KEY, assert_no_secret, manifest, start_tltpipe, tltpipe, wait_until

EMULATOR = Path(__file__).resolve().parents[1] / "emulator"
TOOLKIT = "3.21.11"  # TF image commands and the converter on one PATH, as on a machine with TAO installed

CONFIG = """\
network: ssd
toolkit: "{toolkit}"
name: lpd
dataset: {{format: crpd, path: crpd, classes: {{lpd: lpd}}, val_split: 25}}
model: {{arch: resnet, nlayers: 18, input_width: 320, input_height: 320, pretrained: resnet_18.hdf5}}
train: {{epochs: 4, batch_size: 4, validation_period: 2}}
retrain: {{epochs: 2}}
runner: {{kind: local}}
"""


@pytest.fixture
def tao_on_path(tmp_path, monkeypatch) -> Path:
    """The emulator's TAO commands as executables on PATH."""
    sys.path.insert(0, str(EMULATOR))
    try:
        from tao_emulator import catalog
    finally:
        sys.path.remove(str(EMULATOR))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in catalog.commands(TOOLKIT, "tf"):
        script = bin_dir / command
        script.write_text(f"#!{sys.executable}\nimport os, sys\nsys.path.insert(0, {str(EMULATOR)!r})\n"
                          "from tao_emulator.main import entry\nentry(os.path.basename(sys.argv[0]), sys.argv[1:])\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TAO_EMU_VERSION", TOOLKIT)
    monkeypatch.setenv("TAO_EMU_ROLE", "tf")
    return bin_dir


def _config(sample: Path) -> Path:
    path = sample / "local.yaml"
    path.write_text(CONFIG.format(toolkit=TOOLKIT), encoding="utf-8")
    return path


def test_local_runner_runs_the_whole_chain_with_host_paths(tao_on_path, sample, tmp_path):
    run_dir = tmp_path / "run"
    done = tltpipe("run", "ssd", "--config", str(_config(sample)), "--run-dir", str(run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    stages = manifest(run_dir)["stages"]
    assert all(s["status"] == "succeeded" for s in stages.values()), {n: s["status"] for n, s in stages.items()}
    assert stages["train"]["image_id"] == "local"
    train = stages["train"]["argv"]
    assert train[train.index("-r") + 1] == str(run_dir.resolve() / "train") and "/tltpipe/" not in " ".join(train)
    assert stages["evaluate"]["metrics"]["mAP"] > 0 and (run_dir / stages["engine"]["metrics"]["engine"]).is_file()
    assert (run_dir / "logs" / "train.log").read_text().count("Epoch ") >= 4
    assert_no_secret(run_dir, done.stdout, done.stderr)

    again = tltpipe("run", "ssd", "--config", str(_config(sample)), "--run-dir", str(run_dir), "--json", cwd=tmp_path)
    assert again.returncode == 0
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert {e["stage"] for e in events if e.get("event") == "stage_skipped"} == set(stages)


def test_local_runner_stops_the_process_group_on_ctrl_c(tao_on_path, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_EMU_HANG", "1")
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(_config(sample)), "--run-dir", str(run_dir), "--to", "train",
                         cwd=tmp_path)
    wait_until(lambda: (run_dir / "logs" / "train.log").is_file()
               and "Epoch 1/4" in (run_dir / "logs" / "train.log").read_text(), what="training to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert manifest(run_dir)["stages"]["train"]["status"] == "interrupted"
    assert not _hanging(tao_on_path), "a TAO command outlived Ctrl-C"
    assert KEY not in out + err


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_local_job_outlives_a_killed_tltpipe_and_the_next_run_adopts_it(tao_on_path, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_EMU_EPOCH_SECONDS", "0.6")
    run_dir, config = _killed_during_train(sample, tmp_path, "Epoch 2/4")
    assert manifest(run_dir)["stages"]["train"]["status"] == "running"
    assert list((run_dir / ".tltpipe" / "jobs").iterdir()), "the job outlives a killed tltpipe"

    monkeypatch.delenv("TAO_EMU_EPOCH_SECONDS")
    done = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "of an earlier tltpipe process is running; waiting" in done.stdout
    train = manifest(run_dir)["stages"]["train"]
    assert train["status"] == "succeeded" and train["reason"] == "adopted from an earlier tltpipe process"
    assert "Epoch 4/4" in _log(run_dir) and not list((run_dir / ".tltpipe" / "jobs").iterdir())
    assert_no_secret(run_dir, done.stdout, done.stderr)


def test_force_stops_a_job_left_running(tao_on_path, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_EMU_HANG", "1")
    run_dir, config = _killed_during_train(sample, tmp_path, "Epoch 1/4")
    monkeypatch.delenv("TAO_EMU_HANG")
    done = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", "--force",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stopping job" in done.stdout and manifest(run_dir)["stages"]["train"]["status"] == "succeeded"
    assert not _hanging(tao_on_path)


def _killed_during_train(sample: Path, tmp_path: Path, line: str) -> tuple[Path, Path]:
    """Start a run, wait for a line of the training log, then kill -9 tltpipe (not its job)."""
    run_dir, config = tmp_path / "run", _config(sample)
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train",
                         cwd=tmp_path)
    wait_until(lambda: line in _log(run_dir), what=line)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return run_dir, config


def _log(run_dir: Path) -> str:
    path = run_dir / "logs" / "train.log"
    return path.read_text() if path.is_file() else ""


def _hanging(bin_dir: Path) -> list[Path]:
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(bin_dir) in _cmdline(p)]


def test_a_changed_value_reruns_its_stage_and_the_ones_after_it(tao_on_path, sample, tmp_path):
    run_dir, config = tmp_path / "run", _config(sample)
    first = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "evaluate_retrain",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    again = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "evaluate_retrain",
                    "--set", "prune.threshold=0.3", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    events = [json.loads(line) for line in again.stdout.splitlines()]
    skipped = {e["stage"] for e in events if e.get("event") == "stage_skipped"}
    started = [e["stage"] for e in events if e.get("event") == "stage_started"]
    assert skipped == {"prepare", "tfrecords", "train", "evaluate"}
    assert started == ["prune", "retrain", "evaluate_retrain"]


def test_a_failed_stage_stops_the_run_and_names_its_log(tao_on_path, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_EMU_FAIL_SUBCOMMAND", "prune")
    run_dir = tmp_path / "run"
    done = tltpipe("run", "ssd", "--config", str(_config(sample)), "--run-dir", str(run_dir), cwd=tmp_path)
    assert done.returncode == 1
    assert "logs/prune.log" in done.stderr and "injected failure in prune" in done.stderr
    stages = manifest(run_dir)["stages"]
    assert stages["prune"]["status"] == "failed" and stages["evaluate"]["status"] == "succeeded"
    assert "retrain" not in stages or stages["retrain"]["status"] != "succeeded"


def test_resume_continues_an_interrupted_training_from_its_checkpoint(tao_on_path, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_EMU_FAIL_AT_EPOCH", "3")
    run_dir, config = tmp_path / "run", _config(sample)
    failed = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    assert failed.returncode == 1 and manifest(run_dir)["stages"]["train"]["status"] == "failed"
    monkeypatch.delenv("TAO_EMU_FAIL_AT_EPOCH")
    done = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", "--resume",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    train = manifest(run_dir)["stages"]["train"]
    assert train["status"] == "succeeded" and train["resumed_from"]["epoch"] == 2
    assert "--initial_epoch 3" in " ".join(train["argv"]) and str(run_dir.resolve()) in " ".join(train["argv"])
