"""`tltpipe sweep` through the real CLI on the emulator images: the YOLOv4 plates tutorial's prune-threshold
table (0.1, 0.3, 0.5, 0.7) in one command, train run once, with Docker and (make test-slurm) Slurm jobs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from tltpipe_cli import EXAMPLES, example_sets, examples_folder, manifest, tltpipe

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def yolo_config(tmp_path_factory) -> Path:
    root = examples_folder(tmp_path_factory.mktemp("sweep"))
    shutil.copy(EXAMPLES / "plates_yolov4.yaml", root / "plates_yolov4.yaml")
    return root / "plates_yolov4.yaml"


@pytest.mark.parametrize("runner", ["docker", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_the_prune_threshold_table_in_one_command(emulator_images, yolo_config, tmp_path, runner):
    images = emulator_images[str(yaml.safe_load(yolo_config.read_text())["toolkit"])]
    sets = [*example_sets(images, runner), "train.epochs=6", "retrain.epochs=4"]
    sweep_dir = tmp_path / "sweep"
    done = tltpipe("sweep", "--config", str(yolo_config), "prune.threshold=0.1,0.3,0.5,0.7", "--jobs", "2",
                   "--sweep-dir", str(sweep_dir), "--plain", *[a for s in sets for a in ("--set", s)],
                   cwd=yolo_config.parent, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]

    # Train ran once, in base/; each point pruned, retrained and evaluated its own model.
    assert done.stdout.count("> base/train (") == 1 and "/train (" not in done.stdout.replace("> base/train (", "")
    assert done.stdout.count("/retrain (") == 4 and done.stdout.count("/evaluate_retrain (") == 4
    base = manifest(sweep_dir / "base")["stages"]
    assert list(base) == ["prepare", "tfrecords", "anchors", "train", "evaluate"]
    rows = list(csv.DictReader((sweep_dir / "sweep.csv").open(encoding="utf-8")))
    assert [r["prune.threshold"] for r in rows] == ["0.1", "0.3", "0.5", "0.7"]
    assert all(r["status"] == "succeeded" for r in rows)
    sizes = [int(r["size_bytes"]) for r in rows]
    maps = [float(r["mAP"]) for r in rows]
    assert sizes == sorted(sizes, reverse=True) and maps[-1] < maps[0]  # smaller and worse as the threshold rises
    assert all(float(r["delta_mAP"]) < 0 for r in rows) and all(0 < float(r["pruning_ratio"]) < 1 for r in rows)
    assert "AP_lpd" in rows[0] and "recommended: " in done.stdout
    assert (sweep_dir / "sweep.png").read_bytes().startswith(b"\x89PNG")
    for point in (sweep_dir / "points").iterdir():  # ordinary run directories
        stages = manifest(point)["stages"]
        assert stages["train"]["reason"].startswith("shared with") and stages["evaluate_retrain"]["status"] == "succeeded"
        if runner == "slurm":
            assert stages["retrain"]["job"]["runner"] == "slurm"
    shown = tltpipe("show", str(next((sweep_dir / "points").iterdir())), cwd=tmp_path)
    assert shown.returncode == 0 and "evaluate_retrain" in shown.stdout
