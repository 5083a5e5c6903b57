"""Faults a long training run meets: killed tltpipe, crashed containers, OOM, truncated checkpoints,
a second run on the same directory, a damaged manifest, SIGTERM, leaked keys. Real engine, emulator images."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from tltpipe_cli import (assert_no_secret, containers_labelled, manifest, stage_status, start_tltpipe,
                         tltpipe, wait_until, write_config)

from tlt_pipe import parsers

pytestmark = pytest.mark.docker

CSV = "train/ssd_training_log_resnet18.csv"


def _train_running(run_dir: Path, epoch: int = 1):
    """True once train runs in a container and its log shows `epoch` finished."""
    def check() -> bool:
        log = run_dir / "logs" / "train.log"
        return (stage_status(run_dir, "train") == "running" and bool(containers_labelled(run_dir))
                and log.exists() and f"Epoch {epoch + 1}/" in log.read_text())
    return check


def _csv_epochs(run_dir: Path) -> list[int]:
    return [row.epoch for row in parsers.parse_training_csv((run_dir / CSV).read_text())]


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def test_kill_9_then_the_next_run_adopts_the_running_container(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_EPOCH_SECONDS": "0.7"}, filename="adopt.yaml")
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "evaluate", cwd=tmp_path)
    wait_until(_train_running(run_dir, 2), what="train epoch 2")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert containers_labelled(run_dir), "the container outlives a killed tltpipe"
    assert stage_status(run_dir, "train") == "running"  # the manifest is still valid JSON

    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "evaluate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "of an earlier tltpipe process is running; waiting" in result.stdout
    train = manifest(run_dir)["stages"]["train"]
    assert train["status"] == "succeeded" and train["reason"] == "adopted from an earlier tltpipe process"
    assert _csv_epochs(run_dir) == [1, 2, 3, 4, 5, 6]
    assert "Epoch 6/6" in (run_dir / "logs" / "train.log").read_text()
    assert manifest(run_dir)["stages"]["evaluate"]["status"] == "succeeded"
    assert containers_labelled(run_dir) == []


def test_crash_then_resume_continues_from_the_newest_complete_checkpoint(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_EPOCH_SECONDS": "0.7"}, filename="crash.yaml")
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    wait_until(_train_running(run_dir, 3), what="train epoch 3")
    os.killpg(proc.pid, signal.SIGKILL)  # the machine goes down: tltpipe and the container with it
    _docker("rm", "-f", *containers_labelled(run_dir))
    proc.wait(10)
    done_before = _csv_epochs(run_dir)
    assert done_before and done_before[-1] >= 3

    fast = write_config(sample, emulator_images, "5.0", filename="crash.yaml")  # same config, normal speed
    result = tltpipe("run", "ssd", "--config", str(fast), "--run-dir", str(run_dir), "--to", "train", "--resume",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train = manifest(run_dir)["stages"]["train"]
    resumed = train["resumed_from"]
    assert resumed["epoch"] >= done_before[-1] - 1 and resumed["reason"].startswith("newest complete checkpoint")
    assert f"--initial_epoch {resumed['epoch'] + 1}" in " ".join(train["argv"])
    assert _csv_epochs(run_dir) == [1, 2, 3, 4, 5, 6]  # history from before the crash is kept

    again = tltpipe("run", "ssd", "--config", str(fast), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    assert "- train: skipped, up to date" in again.stdout  # resuming does not make the next run start over


def test_oom_kill_is_diagnosed_and_resume_epoch_is_exact(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", filename="oom.yaml",
                          env={"TAO_EMU_EXIT_CODE": "137", "TAO_EMU_EXIT_AT_EPOCH": "5",
                               "TAO_EMU_TRUNCATE_CHECKPOINT": "4"})
    run_dir = tmp_path / "run"
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    assert result.returncode == 1
    assert "failed with exit code 137: out of memory" in result.stderr

    fine = write_config(sample, emulator_images, "5.0", filename="oom.yaml")
    refused = tltpipe("run", "ssd", "--config", str(fine), "--run-dir", str(run_dir), "--to", "train",
                      "--resume-epoch", "4", cwd=tmp_path)
    assert refused.returncode == 2 and "ssd_resnet18_epoch_004.hdf5 is empty" in refused.stderr
    result = tltpipe("run", "ssd", "--config", str(fine), "--run-dir", str(run_dir), "--to", "train", "--resume",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resumed = manifest(run_dir)["stages"]["train"]["resumed_from"]
    assert resumed["epoch"] == 3 and "epoch_004.hdf5 is empty" in resumed["reason"]
    assert _csv_epochs(run_dir) == [1, 2, 3, 4, 5, 6]


def test_a_second_run_on_the_same_directory_is_refused(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_EPOCH_SECONDS": "0.5"}, filename="lock.yaml")
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    try:
        wait_until(_train_running(run_dir, 1), what="train")
        second = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), cwd=tmp_path)
        assert second.returncode == 4
        assert f"in use by another tltpipe process (pid {proc.pid})" in second.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 143
    assert stage_status(run_dir, "train") == "interrupted"
    assert containers_labelled(run_dir) == []


def test_gc_removes_containers_no_live_tltpipe_owns(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_HANG": "1"}, filename="gc.yaml")
    run_dir = tmp_path / "run"
    proc = start_tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", cwd=tmp_path)
    wait_until(lambda: stage_status(run_dir, "train") == "running" and bool(containers_labelled(run_dir)),
               what="train container")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    orphan = containers_labelled(run_dir)
    listed = tltpipe("gc", "--dry-run", cwd=tmp_path)
    assert listed.returncode == 0 and "would remove" in listed.stdout and str(run_dir) in listed.stdout
    assert containers_labelled(run_dir) == orphan
    removed = tltpipe("gc", cwd=tmp_path)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert containers_labelled(run_dir) == []


def test_damaged_manifest_is_explained_and_force_starts_afresh(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", filename="damaged.yaml")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text('{"tltpipe": "0.1.0", "stages": {"train": {"status": "runn')
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "prepare", cwd=tmp_path)
    assert result.returncode == 2
    assert "manifest.json: not a valid tltpipe manifest" in result.stderr and "--force" in result.stderr
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "prepare", "--force",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert manifest(run_dir)["stages"]["prepare"]["status"] == "succeeded"
    assert len(list(run_dir.glob("manifest.json.damaged-*"))) == 1  # nothing lost


def test_the_key_never_reaches_disk_or_console_even_when_the_task_prints_it(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "3.21.11", env={"TAO_EMU_PRINT_KEY": "1"}, filename="key.yaml")
    run_dir = tmp_path / "run"
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Using encryption key: ***" in (run_dir / "logs" / "train.log").read_text()
    assert_no_secret(run_dir, result.stdout, result.stderr)


def test_raising_the_epoch_count_continues_a_finished_run(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", filename="extend.yaml")
    run_dir = tmp_path / "run"
    first = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "evaluate", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    longer = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "evaluate",
                     "--set", "train.epochs=9", cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr
    assert "epochs raised from 6 to 9: continuing from epoch 6" in longer.stdout
    assert "- tfrecords: skipped" in longer.stdout
    train = manifest(run_dir)["stages"]["train"]
    assert train["resumed_from"]["epoch"] == 6 and "--initial_epoch 7" in " ".join(train["argv"])
    assert _csv_epochs(run_dir) == list(range(1, 10))
    assert manifest(run_dir)["stages"]["evaluate"]["reason"] == "train ran again"
