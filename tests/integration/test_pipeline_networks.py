"""Every network end to end through the real CLI, the real Docker engine and the emulator images:
TAO 5.0 and one older toolkit each (TLT 2.0 for YOLOv3 and DetectNet_v2, as in their tutorials)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlt_pipe.datasets.sample import sample_crpd
from tlt_pipe.networks import NETWORKS

pytestmark = pytest.mark.docker

KEY = "tlt-n3tworks-k3y"
COMMON = ["prepare", "tfrecords", "train", "evaluate", "prune", "retrain", "evaluate_retrain", "export", "engine",
          "evaluate_engine", "inference", "inference_engine", "deepstream"]

CONFIG = """\
network: {network}
toolkit: "{toolkit}"
name: {network}
dataset: {{format: crpd, path: crpd, classes: {{lpd: lpd}}, val_split: 25}}
model: {{pretrained: resnet_18.hdf5{model}}}
train: {{epochs: 4, batch_size: 4, {schedule}: 2}}
retrain: {{epochs: 2}}
engine: {{data_type: {data_type}}}
runner:
  gpus: 0
  image: "{image}"
  deploy_image: {deploy}
docker:
  shm_size: 1G
  ulimits: {{memlock: 8388608, stack: 67108864}}
{extra}"""

# network, toolkit, engine data type, stages beyond the common chain, extra config, model keys
CASES = [
    ("retinanet", "5.0", "fp32", [], "", ""),
    ("retinanet", "3.22.05", "fp32", [], "", ""),
    ("dssd", "5.0", "fp16", [], "", ""),
    ("dssd", "2.0", "fp32", ["tfrecords_val"], "", ""),
    ("yolo_v4", "5.0", "int8", ["anchors"], "prune: {threshold: 0.7, equalization: union}\n", ", input_width: 320, input_height: 320"),
    ("yolo_v4", "3.21.11", "int8", ["anchors"], "anchors: {mode: tao}\n", ", input_width: 320, input_height: 320"),
    ("yolo_v4_tiny", "4.0", "fp32", ["anchors"], "", ""),
    ("yolo_v4_tiny", "5.0", "fp32", ["anchors"], "", ""),
    ("yolo_v3", "5.0", "fp32", ["anchors"], "", ", arch: darknet, nlayers: 53"),
    ("yolo_v3", "2.0", "fp32", ["tfrecords_val", "anchors"], "", ", arch: darknet, nlayers: 53"),
    ("detectnet_v2", "5.0", "int8", ["tfrecords_val"], "", ", input_width: 320, input_height: 192"),
    ("detectnet_v2", "2.0", "int8", ["tfrecords_val", "calibration_tensorfile"], "",
     ", input_width: 320, input_height: 192"),
]
ORDER = ["prepare", "tfrecords", "tfrecords_val", "anchors", "train", "evaluate", "prune", "retrain",
         "evaluate_retrain", "calibration_tensorfile", "export", "engine", "evaluate_engine", "inference",
         "inference_engine", "deepstream"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    sample_crpd(root / "crpd", 24, 0)
    (root / "resnet_18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\nstand-in weights")
    return root


def tltpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TLTPIPE_KEY": KEY, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "tlt_pipe", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("network, toolkit, data_type, extras, extra, model", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_network_end_to_end(emulator_images, sample, tmp_path, network, toolkit, data_type, extras, extra, model):
    images = emulator_images[toolkit]
    deploy = json.dumps(images["deploy_image"]) if images["deploy_image"] else "null"
    config = sample / f"{network}-{toolkit}.yaml"
    # YOLO on TAO 3+ validates at every checkpoint; the others every validation_period epochs.
    schedule = "checkpoint_interval" if NETWORKS[network].validation_at_checkpoints(toolkit) else "validation_period"
    config.write_text(CONFIG.format(network=network, toolkit=toolkit, image=images["image"], deploy=deploy,
                                    data_type=data_type, extra=extra, model=model, schedule=schedule),
                      encoding="utf-8")
    run_dir = tmp_path / "run"
    done = tltpipe("run", network, "--config", str(config), "--run-dir", str(run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]

    record = json.loads((run_dir / "manifest.json").read_text())
    # TLT 2.0's DetectNet_v2 has no TensorRT evaluate: inference_engine only.
    expected = [s for s in ORDER if (s in COMMON or s in extras)
                and not (s == "evaluate_engine" and network == "detectnet_v2" and toolkit == "2.0")]
    assert list(record["stages"]) == expected
    stages = record["stages"]
    assert all(s["status"] == "succeeded" for s in stages.values()), {n: s["status"] for n, s in stages.items()}
    train = stages["train"]
    assert KEY not in " ".join(train["argv"])
    for name in ("evaluate", "evaluate_retrain"):
        metrics = stages[name]["metrics"]
        assert 0 < metrics["mAP"] <= 1 and set(metrics["ap"]) == {"lpd"}
    assert 0 < stages["prune"]["metrics"]["pruning_ratio"] < 1
    assert stages["inference"]["metrics"]["images"] > 0
    assert stages["inference_engine"]["metrics"]["images"] == stages["inference"]["metrics"]["images"]
    if "evaluate_engine" in stages:  # the engine's mAP, next to the retrained model's
        measured = stages["evaluate_engine"]["metrics"]
        assert 0 < measured["mAP"] <= 1 and measured["model_mAP"] == stages["evaluate_retrain"]["metrics"]["mAP"]
        assert measured["precision"] == data_type and (measured["mAP_drop"] > 0) == (data_type != "fp32")
    engine = stages["engine"]
    assert (run_dir / engine["metrics"]["engine"]).stat().st_size > 0
    assert engine["argv"][engine["argv"].index("-o") + 1 if "-o" in engine["argv"] else 0]

    if network.startswith("yolo"):
        anchors = stages["anchors"]["artifacts"]
        groups = ["mid_anchor_shape", "big_anchor_shape"] + ([] if network == "yolo_v4_tiny" else ["small_anchor_shape"])
        spec = (run_dir / "specs" / "train.txt").read_text()
        for group in groups:
            assert f'{group}: "{anchors[group]}"' in spec
        assert "pretrain_model_path" in spec and "-m" not in train["argv"]
        assert "pruned_model_path" in (run_dir / "specs" / "retrain.txt").read_text()
        assert "-e" in stages["prune"]["argv"]
    if network == "retinanet":  # retinanet train has no -m: the models are spec fields
        assert "pretrain_model_path" in (run_dir / "specs" / "train.txt").read_text() and "-m" not in train["argv"]
        assert "pruned_model_path" in (run_dir / "specs" / "retrain.txt").read_text()
        assert "-m" not in stages["retrain"]["argv"] and "-e" not in stages["prune"]["argv"]
    if network == "detectnet_v2":
        assert train["artifacts"]["model"].startswith("train/weights/model.")
        assert train["metrics"]["selected_by"] == "final model"
        retrain_spec = (run_dir / "specs" / "retrain.txt").read_text()
        assert "load_graph: true" in retrain_spec and "pretrained_model_file" in retrain_spec
        assert "output_cov/Sigmoid,output_bbox/BiasAdd" in engine["argv"] or toolkit == "5.0"
    if data_type == "int8":
        calibrated = stages["export"]["metrics"].get("calibration_images") or engine["metrics"].get("calibration_images")
        assert calibrated and calibrated > 0
    if toolkit == "2.0":
        assert train["argv"][0] == "tlt-train" and stages["prune"]["argv"][0] == "tlt-prune"
        spec = (run_dir / "specs" / "train.txt").read_text()
        assert "validation_data_source {" in spec and "preprocessing {" in spec and "output_width" not in spec
        assert engine["argv"][0] == "tlt-converter"
