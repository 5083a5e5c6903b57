"""The pytorch-ssd example trains for real on this machine's CPU, through tests/pytorch_ssd (a stand-in of jetson-
inference's scripts that keeps their flags, log lines and files, and trains a real small SSD with PyTorch):
checkpoints and validation losses, AP from eval_ssd.py, the ONNX exported on the CPU and run in onnxruntime, the
detectnet command, Ctrl-C then --resume from the last checkpoint, a re-run that skips, show and report.

`make test-pytorch` runs it (PyTorch is a large install, so `make test` leaves it out)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import yaml

from tlt_pipe.datasets.sample import sample_crpd
from tltpipe_cli import EXAMPLES, manifest, stage_status, start_tltpipe, tltpipe, wait_until

pytestmark = pytest.mark.pytorch
STANDIN = Path(__file__).resolve().parents[1] / "pytorch_ssd"


def test_the_pytorch_ssd_example_trains_evaluates_exports_and_resumes_for_real(tmp_path):
    sample_crpd(tmp_path / "data" / "crpd", n_images=20, seed=3)
    config = tmp_path / "plates_ssd_mobilenet.yaml"
    shutil.copy(EXAMPLES / "plates_ssd_mobilenet.yaml", config)
    sets = [f"pytorch_ssd.repo={STANDIN}", "pytorch_ssd.pretrained=null", f"pytorch_ssd.python={sys.executable}",
            "train.epochs=4", "pytorch_ssd.workers=0", "runner.gpus=0"]
    args = ["--config", str(config), "--run-dir", str(tmp_path / "run"), "--plain",
            *[a for s in sets for a in ("--set", s)]]
    run_dir = tmp_path / "run"

    # Ctrl-C once the second checkpoint is written, then --resume continues from it.
    started = start_tltpipe("run", "ssd_mobilenet", *args, cwd=tmp_path, key=None)
    wait_until(lambda: len(list((run_dir / "train").glob("mb1-ssd-Epoch-*.pth"))) >= 2 or started.poll() is not None,
               timeout=600, what="two checkpoints")
    os.killpg(started.pid, signal.SIGINT)
    out, err = started.communicate(timeout=120)
    assert started.returncode == 130 and stage_status(run_dir, "train") == "interrupted", out[-2000:] + err[-2000:]
    resumed = tltpipe("run", "ssd_mobilenet", *args, "--resume", cwd=tmp_path, key=None, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-3000:]
    train = manifest(run_dir)["stages"]["train"]
    assert train["resumed_from"]["epoch"] >= 2 and "--resume" in train["argv"]
    assert (run_dir / "train" / "part-0").is_dir()  # the first attempt's checkpoints, kept

    stages = manifest(run_dir)["stages"]
    assert list(stages) == ["prepare", "train", "evaluate", "export", "detectnet"]
    assert all(s["status"] == "succeeded" for s in stages.values()), {n: s["status"] for n, s in stages.items()}
    train = stages["train"]["metrics"]
    assert [c["epoch"] for c in train["epochs"]] == [1, 2, 3, 4]  # real checkpoints, their losses in the names
    for checkpoint in train["epochs"]:
        path = run_dir / checkpoint["checkpoint"]
        assert path.is_file() and path.stat().st_size > 100_000
        assert path.name.endswith(f"-Loss-{checkpoint['validation_loss']}.pth")
    best = min(train["epochs"], key=lambda c: c["validation_loss"])
    assert stages["train"]["artifacts"]["model"] == best["checkpoint"] and train["best_epoch"] == best["epoch"]
    evaluate = stages["evaluate"]["metrics"]
    assert set(evaluate["ap"]) == {"lpd"} and 0.0 <= evaluate["mAP"] <= 1.0
    export = stages["export"]["metrics"]
    assert export["device"] == "cpu" and export["onnx_checked"] and export["onnx_input"] == "input_0"
    assert export["scores_shape"][0] == 1 and export["scores_shape"][2] == 2 and export["boxes_shape"][2] == 4
    assert export["scores_shape"][1] == export["boxes_shape"][1] > 100
    script = (run_dir / "detectnet" / "run.sh").read_text()
    assert "--input-blob=input_0 --output-cvg=scores --output-bbox=boxes" in script
    assert (run_dir / "detectnet" / script.split("--model=")[1].split()[0]).resolve() == run_dir / "export" / "ssd-mobilenet.onnx"

    again = tltpipe("run", "ssd_mobilenet", *args, cwd=tmp_path, key=None, timeout=300)
    assert again.returncode == 0 and again.stdout.count("skipped, up to date") == 5, again.stdout[-3000:]

    shown = tltpipe("show", str(run_dir), cwd=tmp_path)
    assert shown.returncode == 0 and "ssd_mobilenet" in shown.stdout and "detectnet" in shown.stdout
    report = tltpipe("report", str(run_dir), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    history = yaml.safe_load((run_dir / "report" / "metrics.json").read_text())["history"]["train"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4] and all(row["validation_loss"] > 0 for row in history)


def test_export_on_cuda_without_a_gpu_fails_as_pytorch_ssd_does(tmp_path):
    """onnx_export.py puts its input on CUDA: run as it is on this machine (no GPU), the export stage fails with the
    script's own error, after training and evaluation went through (tltpipe's CPU path is checked above)."""
    sample_crpd(tmp_path / "data" / "crpd", n_images=10, seed=4)
    config = tmp_path / "plates_ssd_mobilenet.yaml"
    shutil.copy(EXAMPLES / "plates_ssd_mobilenet.yaml", config)
    sets = [f"pytorch_ssd.repo={STANDIN}", "pytorch_ssd.pretrained=null", f"pytorch_ssd.python={sys.executable}",
            "train.epochs=1", "pytorch_ssd.workers=0", "runner.gpus=all", "pytorch_ssd.export_device=cuda"]
    done = tltpipe("run", "ssd_mobilenet", "--config", str(config), "--run-dir", str(tmp_path / "run"), "--plain",
                   "--to", "export", *[a for s in sets for a in ("--set", s)], cwd=tmp_path, key=None, timeout=900)
    assert done.returncode == 1 and "stage export failed" in done.stderr, done.stdout[-2000:] + done.stderr[-2000:]
    stages = manifest(tmp_path / "run")["stages"]
    assert stages["train"]["status"] == stages["evaluate"]["status"] == "succeeded"
    assert "--use-cuda" in stages["train"]["argv"]  # no GPU here: training asked for the CPU all the same
    assert stages["train"]["argv"][stages["train"]["argv"].index("--use-cuda") + 1] == "False"
    refused = tltpipe("run", "ssd_mobilenet", "--config", str(config), "--run-dir", str(tmp_path / "run"),
                      *[a for s in [*sets[:-2], "runner.gpus=0", "pytorch_ssd.export_device=cuda"] for a in ("--set", s)],
                      cwd=tmp_path, key=None)
    assert refused.returncode == 2 and "export_device" in refused.stderr  # said before anything starts
