"""Single stages for CI through the real CLI and the emulator: JSON events, upstream errors, the
stage log, and plain output without a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tltpipe_cli import KEY, tltpipe, write_config

pytestmark = pytest.mark.docker


def json_events(stdout: str) -> list[dict]:
    events = [json.loads(line) for line in stdout.splitlines()]  # every stdout line must be JSON
    assert all("event" in e for e in events)
    return events


def test_stage_json_events_log_and_plain_output(emulator_images, sample, tmp_path):  # noqa: F811
    config = write_config(sample, emulator_images, "5.0")
    run_dir = tmp_path / "runs" / "lpd"
    base = ["--config", str(config), "--run-dir", str(run_dir)]

    missing = tltpipe("stage", "train", *base, "--json", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert "stage train needs tfrecords, which has not succeeded" in missing.stderr
    assert "tltpipe stage tfrecords" in missing.stderr

    # No terminal and no NO_COLOR: plain lines, no control codes at all.
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM", "FORCE_COLOR")}
    env.update(TLTPIPE_KEY=KEY, TERM="xterm-256color")
    prepared = subprocess.run([sys.executable, "-m", "tlt_pipe", "run", "ssd", *base, "--to", "tfrecords"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    assert "\x1b" not in prepared.stdout and "\r" not in prepared.stdout
    assert "> tfrecords (" in prepared.stdout and "ok tfrecords in" in prepared.stdout

    trained = tltpipe("stage", "train", *base, "--json", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    events = json_events(trained.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "stage_started" and kinds[-2:] == ["metrics", "stage_finished"]
    started = events[0]
    assert started["stage"] == "train" and started["image"] == emulator_images["5.0"]["image"]
    assert started["argv"][:2] == ["ssd", "train"] and "***" in started["argv"] and started["log"] == "logs/train.log"
    progress = [e for e in events if e["event"] == "progress"]
    assert sorted({p["epoch"] for p in progress}) == [1, 2, 3, 4, 5, 6]
    assert all(p["max_epoch"] == 6 and p["stage"] == "train" for p in progress)
    last = progress[-1]
    assert last["epoch"] == 6 and last["loss"] > 0 and last["lr"] > 0 and 0 < last["map"] <= 1
    assert events[-2]["metrics"]["best_epoch"] in range(1, 7)
    finished = events[-1]
    assert finished["status"] == "succeeded" and finished["exit_code"] == 0 and finished["duration"] > 0
    assert "ok train in" in trained.stderr  # the human events went to stderr
    assert KEY not in trained.stdout + trained.stderr

    # The full log: no carriage-return redraws, one line per epoch.
    log = (run_dir / "logs" / "train.log").read_text()
    assert "\r" not in log
    lines = log.splitlines()
    for epoch in range(1, 7):
        assert lines.count(f"Epoch {epoch}/6") == 1
    finals = [line for line in lines if "/step - loss:" in line]
    assert len(finals) == 6 and not any("ETA:" in line for line in lines)

    again = tltpipe("stage", "train", *base, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [e["event"] for e in json_events(again.stdout)] == ["stage_skipped"]


def test_failed_stage_json_and_exit_code(emulator_images, sample, tmp_path):  # noqa: F811
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_FAIL_AT_EPOCH": "2"})
    run_dir = tmp_path / "run"
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--to", "train", "--json",
                     cwd=tmp_path)
    assert result.returncode == 1
    events = json_events(result.stdout)
    finished = [e for e in events if e["event"] == "stage_finished"]
    assert [(e["stage"], e["status"]) for e in finished] == [("prepare", "succeeded"), ("tfrecords", "succeeded"),
                                                             ("train", "failed")]
    assert finished[-1]["exit_code"] == 255 and "exit code 255" in finished[-1]["error"]
    assert "stage train failed with exit code 255" in result.stderr
    Path(run_dir / "logs" / "train.log").read_text()  # the log is there for the failure
