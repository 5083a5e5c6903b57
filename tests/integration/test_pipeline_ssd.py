"""The whole SSD chain through the real CLI, the real Docker engine and the emulator images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tltpipe_cli import KEY, STAGES, assert_no_secret, containers_labelled, manifest, tltpipe, write_config

pytestmark = pytest.mark.docker

@pytest.mark.parametrize("toolkit, model_ext, export_ext, jobs",
                         [("5.0", "hdf5", "onnx", "1"), ("3.21.11", "tlt", "etlt", "3")])
def test_full_chain_then_skip_then_change(emulator_images, sample, tmp_path, toolkit, model_ext, export_ext, jobs):
    config = write_config(sample, emulator_images, toolkit)
    run_dir = tmp_path / "runs" / "lpd"
    first = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--jobs", jobs, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # Side by side with --jobs 3: prune starts while evaluate runs, inference while export runs.
    side_by_side = first.stdout.index("> prune (") < first.stdout.index("ok evaluate")
    assert side_by_side == (jobs == "3")
    if jobs == "3":
        assert first.stdout.index("> inference (") < first.stdout.index("ok export")

    record = manifest(run_dir)
    assert list(record["stages"]) == STAGES
    for name, stage in record["stages"].items():
        assert stage["status"] == "succeeded", (name, stage)
        assert stage["exit_code"] == 0 and (run_dir / stage["log"]).is_file()
        for output in stage["outputs"]:
            assert Path(output["path"]).exists()
    train = record["stages"]["train"]
    assert train["image"] == emulator_images[toolkit]["image"] and train["image_id"].startswith("sha256:")
    assert "***" in train["argv"] and train["argv"][:2] == ["ssd", "train"]
    assert [s["path"] for s in train["specs"]] == ["specs/train.txt"]
    assert 1 <= train["metrics"]["best_epoch"] <= 6 and train["metrics"]["selected_by"] == "best mAP"
    assert train["artifacts"]["model"].endswith(f"_epoch_{train['metrics']['best_epoch']:03d}.{model_ext}")
    evaluate = record["stages"]["evaluate"]["metrics"]
    assert 0 < evaluate["mAP"] <= 1 and set(evaluate["ap"]) == {"lpd"}
    assert 0 < record["stages"]["prune"]["metrics"]["pruning_ratio"] < 1
    assert record["stages"]["export"]["artifacts"]["model"] == f"export/ssd.{export_ext}"
    assert (run_dir / "export" / "nvinfer_config.txt").is_file()
    engine = record["stages"]["engine"]
    assert (run_dir / engine["metrics"]["engine"]).stat().st_size > 0
    if toolkit == "5.0":
        assert engine["image"] == emulator_images["5.0"]["deploy_image"] and "gen_trt_engine" in engine["argv"]
    else:
        assert engine["argv"][0] == "converter" and engine["argv"][1:3] == ["-k", "***"]
    assert record["stages"]["inference"]["metrics"]["images"] > 0
    owner = (run_dir / "train").stat().st_uid
    assert owner == os.getuid()
    assert containers_labelled(run_dir) == []
    assert_no_secret(run_dir, first.stdout, first.stderr)

    again = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for name in STAGES:
        assert f"- {name}: skipped, up to date" in again.stdout
        assert f"> {name} (" not in again.stdout

    changed = write_config(sample, emulator_images, toolkit, extra="")
    changed.write_text(changed.read_text().replace("threshold: 0.1", "threshold: 0.3"))
    third = tltpipe("run", "ssd", "--config", str(changed), "--run-dir", str(run_dir), cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    for name in STAGES[:4]:
        assert f"- {name}: skipped" in third.stdout
    for name in STAGES[4:]:
        assert f"> {name}" in third.stdout
    assert "run  prune             changed: argv" in third.stdout


def test_dry_run_json_starts_nothing(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0")
    result = tltpipe("run", "ssd", "--config", str(config), "--dry-run", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["stage"] for line in lines] == STAGES
    assert all({"stage", "action", "reason", "image", "argv"} <= set(line) for line in lines)
    assert not (tmp_path / "runs").exists()


def test_failing_stage_stops_the_run(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_FAIL_AT_EPOCH": "3"})
    run_dir = tmp_path / "run"
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir), cwd=tmp_path)
    assert result.returncode == 1
    assert "stage train failed with exit code 255" in result.stderr
    assert "--- last " in result.stderr and "Execution status: FAIL" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("tltpipe: error: stage train failed")
    assert "Traceback" not in result.stderr
    stages = manifest(run_dir)["stages"]
    assert stages["train"]["status"] == "failed" and stages["train"]["exit_code"] == 255
    assert "evaluate" not in stages
    assert containers_labelled(run_dir) == []


def test_bad_spec_override_fails_before_any_container(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0",
                          extra="spec_overrides:\n  experiment: {training_config.num_epoch: 3}\n")
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    line = config.read_text(encoding="utf-8").splitlines().index("  experiment: {training_config.num_epoch: 3}") + 1
    assert result.stderr.strip().splitlines() == [  # the config's line and group, not the rendered spec's
        f'tltpipe: error: {config}:{line}: spec_overrides.experiment.training_config.num_epoch: TrainingConfig has no '
        'field named "num_epoch"']
    assert not (tmp_path / "run").exists()


def test_ctrl_c_stops_the_container_and_marks_the_stage(emulator_images, sample, tmp_path):
    config = write_config(sample, emulator_images, "5.0", env={"TAO_EMU_EPOCH_SECONDS": "5"})
    run_dir = tmp_path / "run"
    env = {**os.environ, "NO_COLOR": "1", "TLTPIPE_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "tlt_pipe", "run", "ssd", "--config", str(config),
                             "--run-dir", str(run_dir)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (run_dir / "manifest.json").exists() and manifest(run_dir)["stages"].get("train", {}).get("status") == "running" \
                and containers_labelled(run_dir):
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("train never started")
    time.sleep(2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 15
    assert manifest(run_dir)["stages"]["train"]["status"] == "interrupted"
    assert containers_labelled(run_dir) == []
    assert "Traceback" not in err
