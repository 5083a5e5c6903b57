"""`tltpipe tune` through the real CLI on the emulator images: six trials two at a time, one pruned from its
validation mAP, the best config written; killed with -9 halfway, the same command finishes the study."""

from __future__ import annotations

import csv
import os
import signal

import pytest
import yaml

from tltpipe_cli import SLURM_SETS, manifest, start_tltpipe, tltpipe, wait_until, write_config

pytestmark = pytest.mark.docker

TUNE = """\
tune:
  trials: 6
  startup_trials: 2
  seed: 3
  space:
    train.learning_rate.max: {type: float, low: 1.0e-6, high: 1.0e-1, log: true}
    train.batch_size: {type: categorical, choices: [4, 8]}
"""


@pytest.mark.parametrize("runner", ["docker", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_six_trials_two_at_a_time_pruned_killed_and_finished(emulator_images, sample, tmp_path, runner):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_EPOCH_SECONDS": "1"}, extra=TUNE,
                          filename=f"tune-{runner}.yaml")
    tune_dir = tmp_path / "tune"
    args = ("tune", "--config", str(config), "--jobs", "2", "--tune-dir", str(tune_dir), "--plain", "--quiet")
    if runner == "slurm":  # every stage of every trial a batch job
        args += tuple(a for s in SLURM_SETS for a in ("--set", s))
    proc = start_tltpipe(*args, cwd=tmp_path)
    try:
        wait_until(lambda: len(list((tune_dir / "trials").glob("*/manifest.json"))) >= 3, timeout=300,
                   what="three trials started")
        os.killpg(proc.pid, signal.SIGKILL)  # trials are left running, their containers too
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = tltpipe(*args, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "is run again" in done.stdout  # the trials the dead tltpipe left

    rows = list(csv.DictReader((tune_dir / "trials.csv").open(encoding="utf-8")))
    assert len(rows) == 6 and {r["state"] for r in rows} <= {"complete", "pruned"}, rows
    assert any(r["state"] == "pruned" and int(r["pruned_at_epoch"]) >= 1 for r in rows)
    for row in rows:  # every trial an ordinary run directory, its values in its config
        trial = yaml.safe_load((tmp_path / row["run_dir"] / "config.yaml").read_text(encoding="utf-8"))
        assert trial["train"]["batch_size"] == int(row["train.batch_size"])
        if row["state"] == "complete":
            assert manifest(tmp_path / row["run_dir"])["stages"]["evaluate"]["status"] == "succeeded"
    assert manifest(tune_dir / "base")["stages"]["tfrecords"]["status"] == "succeeded"  # shared, run once
    best = yaml.safe_load((tune_dir / "best.yaml").read_text(encoding="utf-8"))
    winner = max((r for r in rows if r["state"] == "complete"), key=lambda r: float(r["mAP"]))
    assert best["train"]["batch_size"] == int(winner["train.batch_size"]) and "tune" not in best
    assert "best: trial" in done.stdout and (tune_dir / "importance.png").is_file()
    if runner == "slurm":
        assert all(manifest(tmp_path / r["run_dir"])["stages"]["train"]["job"]["runner"] == "slurm"
                   for r in rows if r["state"] == "complete")
    plan = tltpipe("run", "ssd", "--config", str(tune_dir / "best.yaml"), "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr  # ready for tltpipe run
