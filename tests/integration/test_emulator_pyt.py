"""TAO 6.26.3's RT-DETR and DINO in the emulator images, driven with the docker CLI: train, evaluate and
export in the PyTorch image, then gen_trt_engine, evaluate and inference in the deploy image, on a tiny
COCO dataset; specs are checked against NVIDIA's own ExperimentConfig dataclasses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulator"))
import emu_samples as samples  # noqa: E402
from test_emulator import KEY, _convert, docker_run  # noqa: E402

pytestmark = pytest.mark.docker

RUN = "/tltpipe/run"


def _jpeg(path: str, width: int, height: int, index: int) -> None:
    from PIL import Image  # noqa: PLC0415

    Image.new("RGB", (width, height), (40 * index % 256, 120, 60)).save(path, "JPEG")


@pytest.fixture
def work(tmp_path):
    """A run folder the container's non-root user can write, with a 4-image COCO dataset (64x48 JPEGs)."""
    d = tmp_path / "run"
    d.mkdir()
    os.chmod(d, 0o777)
    samples.write_coco_dataset(str(d / "data"), n_images=4, width=64, height=48, write_image=_jpeg, ext=".jpg")
    return d


@pytest.fixture
def images(emulator_images):
    table = emulator_images["6.26.3"]
    assert table["image"] == emulator_images["5.0"]["image"]  # the TF1 networks of 6.26.3 run in TAO 5.0's image
    return table["pyt_image"], table["deploy_image"]


def _spec(work: Path, net: str, name: str = "spec.yaml", text: str | None = None) -> str:
    (work / name).write_text(text or samples.detr_spec(f"{RUN}/data", f"{RUN}/results", net=net, epochs=2))
    return f"{RUN}/{name}"


def _status(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("net", ["rtdetr", "dino"])
def test_train_evaluate_export_then_tensorrt(images, work, net):
    pyt, deploy = images
    spec = _spec(work, net)
    rc, out = docker_run(pyt, [net, "train", "-e", spec], work)
    assert rc == 0, out
    assert "Train results will be saved at: /tltpipe/run/results/train" in out
    assert out.rstrip().endswith("Execution status: PASS")
    train = work / "results" / "train"
    assert sorted(p.name for p in train.glob("*.pth")) == sorted([
        f"{net}_model_latest.pth", "model_epoch_000.pth", "model_epoch_001.pth"])
    link = train / f"{net}_model_latest.pth"
    assert os.readlink(link) == "model_epoch_001.pth" and link.resolve() == train / "model_epoch_001.pth"
    lines = _status(train / "status.json")
    assert lines[0]["status"] == "STARTED" and lines[-1]["status"] == "SUCCESS"
    train_lines = [ln for ln in lines if "train_loss" in ln.get("kpi", {})]
    val_lines = [ln for ln in lines if "val_mAP" in ln.get("kpi", {})]
    assert [(ln["epoch"], ln["max_epoch"]) for ln in train_lines] == [(1, 2), (2, 2)]
    assert all(isinstance(ln["kpi"]["val_mAP"], str) and isinstance(ln["kpi"]["val_mAP50"], str)
               and isinstance(ln["kpi"]["val_loss"], float) for ln in val_lines) and len(val_lines) == 2
    assert float(val_lines[1]["kpi"]["val_mAP"]) > float(val_lines[0]["kpi"]["val_mAP"])

    latest = f"{RUN}/results/train/{net}_model_latest.pth"
    rc, out = docker_run(pyt, [net, "evaluate", "-e", spec, f"evaluate.checkpoint={latest}"], work)
    assert rc == 0, out
    kpi = next(ln["kpi"] for ln in _status(work / "results" / "evaluate" / "status.json") if "kpi" in ln)
    assert set(kpi) == {"test_mAP", "test_mAP50"} and f"test_mAP: {kpi['test_mAP']}" in out
    assert kpi["test_mAP"] == val_lines[-1]["kpi"]["val_mAP"]  # same model state, same data

    onnx = f"{RUN}/export/{net}.onnx"
    rc, out = docker_run(pyt, [net, "export", "-e", spec, f"export.checkpoint={latest}", f"export.onnx_file={onnx}"],
                         work)
    assert rc == 0 and (work / "export" / f"{net}.onnx").is_file(), out

    engine = f"{RUN}/export/{net}.engine"
    rc, out = docker_run(deploy, [net, "gen_trt_engine", "-e", spec, f"gen_trt_engine.onnx_file={onnx}",
                                  f"gen_trt_engine.trt_engine={engine}", "gen_trt_engine.tensorrt.data_type=FP16"],
                         work)
    assert rc == 0 and (work / "export" / f"{net}.engine").is_file(), out
    assert (work / "results" / "gen_trt_engine" / "status.json").is_file()
    rc, out = docker_run(deploy, [net, "evaluate", "-e", spec, f"evaluate.trt_engine={engine}"], work)
    assert rc == 0, out
    scores = json.loads((work / "results" / "trt_evaluate" / "results.json").read_text())
    assert 0 < scores["AP"] < float(kpi["test_mAP"])  # FP16 costs a little accuracy
    deploy_status = _status(work / "results" / "trt_evaluate" / "status.json")
    assert deploy_status[-1]["status"] == "SUCCESS" and not any("kpi" in ln for ln in deploy_status)
    rc, out = docker_run(deploy, [net, "inference", "-e", spec, f"inference.trt_engine={engine}"], work)
    assert rc == 0, out
    infer = work / "results" / "trt_inference"
    assert sorted(p.name for p in (infer / "images_annotated").iterdir()) == [f"{i:06d}.jpg" for i in range(4)]
    labels = sorted((infer / "labels").iterdir())
    assert [p.name for p in labels] == [f"{i:06d}.txt" for i in range(4)]
    for label in labels:
        for line in label.read_text().splitlines():
            fields = line.split()
            assert len(fields) == 16 and fields[0] in ("car", "person")


def test_misspelt_spec_key_fails_naming_it(images, work):
    pyt, _ = images
    text = samples.detr_spec(f"{RUN}/data", f"{RUN}/results").replace("  num_epochs: 2", "  num_epoch: 2")
    rc, out = docker_run(pyt, ["rtdetr", "train", "-e", _spec(work, "rtdetr", "bad.yaml", text)], work)
    assert rc == 1
    assert "Key 'num_epoch' not in 'RTTrainExpConfig'" in out and "full_key: train.num_epoch" in out
    assert out.rstrip().endswith("Execution status: FAIL")
    assert not (work / "results").exists()
    rc, out = docker_run(pyt, ["rtdetr", "train", "-e", _spec(work, "rtdetr"), "train.optim.lrr=0.1"], work)
    assert rc == 1 and "Could not override 'train.optim.lrr'" in out


def test_command_line_errors(images, work):
    pyt, deploy = images
    spec = _spec(work, "dino")
    rc, out = docker_run(pyt, ["dino", "train"], work)
    assert rc == 1 and out.strip().splitlines() == [
        "ERROR: The subtask `train` requires the following argument: -e/--experiment_spec_file"]
    rc, out = docker_run(pyt, ["dino", "train", "-e", f"{RUN}/missing.yaml"], work)
    assert rc == 1 and len(out.strip().splitlines()) == 1 and "missing.yaml" in out
    rc, out = docker_run(pyt, ["dino", "gen_trt_engine", "-e", spec], work)
    assert rc == 2 and "invalid choice: 'gen_trt_engine'" in out
    rc, out = docker_run(deploy, ["dino", "train", "-e", spec], work)
    assert rc == 2 and "invalid choice: 'train'" in out
    rc, out = docker_run(pyt, ["ssd", "train"], work)
    assert rc == 127  # the TF1 networks are not in the PyTorch image
    rc, out = docker_run(pyt, ["dino", "evaluate", "-e", spec], work)
    assert rc == 1 and "Missing mandatory value: evaluate.checkpoint" in out


def test_docker_stop_leaves_whole_checkpoints_and_training_resumes(images, work):
    pyt, _ = images
    spec = _spec(work, "rtdetr")
    cmd = ["docker", "run", "-d", "--user", "1000:1000", "-v", f"{work}:{RUN}", "-e", "TAO_EMU_EPOCH_SECONDS=0.5",
           pyt, "rtdetr", "train", "-e", spec, "train.num_epochs=40"]
    cid = subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    train = work / "results" / "train"
    try:
        for _ in range(200):
            if (train / "model_epoch_001.pth").exists():
                break
            time.sleep(0.1)
        subprocess.run(["docker", "stop", "-t", "20", cid], stdout=subprocess.DEVNULL, check=True, timeout=30)
        rc = int(subprocess.run(["docker", "wait", cid], stdout=subprocess.PIPE, timeout=30).stdout.decode())
        assert rc == 143
    finally:
        subprocess.run(["docker", "rm", "-f", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved = sorted(p.name for p in train.glob("model_epoch_*.pth"))
    assert saved and not list(train.glob(".*.partial"))
    newest = int(saved[-1][len("model_epoch_"):-len(".pth")])
    assert os.readlink(train / "rtdetr_model_latest.pth") == saved[-1]
    rc, out = docker_run(pyt, ["rtdetr", "train", "-e", spec, f"train.num_epochs={newest + 3}"], work)
    assert rc == 0, out
    assert f"Setting resume checkpoint to {RUN}/results/train/{saved[-1]}" in out
    assert f"Epoch {newest + 1}:" in out and f"Epoch {newest}:" not in out
    assert os.readlink(train / "rtdetr_model_latest.pth") == f"model_epoch_{newest + 2:03d}.pth"


def test_tf1_networks_of_626_train_in_tf50_and_deploy_in_626(emulator_images, work):
    """NVIDIA's launcher runs 6.26.3's TF1 networks in TAO 5.0's TF image; deploy-6.26.3 builds and runs
    their engines like deploy-5.0, with its own TensorRT (an engine of deploy-5.0 does not load)."""
    tf, deploy = emulator_images["6.26.3"]["image"], emulator_images["6.26.3"]["deploy_image"]
    samples.write_kitti_dataset(str(work / "kitti"), n_images=8)
    (work / "convert.txt").write_text(samples.kitti_convert_spec(f"{RUN}/kitti", val_split=20))
    _convert(tf, work)
    (work / "ssd.txt").write_text(samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/kitti", epochs=1, ckpt=1))
    rc, out = docker_run(tf, ["ssd", "train", "-e", f"{RUN}/ssd.txt", "-r", f"{RUN}/train", "-k", KEY], work)
    assert rc == 0, out
    onnx = f"{RUN}/export/ssd.onnx"
    rc, out = docker_run(tf, ["ssd", "export", "-m", f"{RUN}/train/weights/ssd_resnet18_epoch_001.hdf5",
                              "-o", onnx, "-e", f"{RUN}/ssd.txt"], work)
    assert rc == 0, out
    engines = {}
    for image in (deploy, emulator_images["5.0"]["deploy_image"]):
        engines[image] = f"{RUN}/export/{image.rsplit(':', 1)[1]}.engine"
        rc, out = docker_run(image, ["ssd", "gen_trt_engine", "-m", onnx, "-e", f"{RUN}/ssd.txt",
                                     "-r", f"{RUN}/gen", "--engine_file", engines[image]], work)
        assert rc == 0, out
    rc, out = docker_run(deploy, ["ssd", "evaluate", "-m", engines[deploy], "-e", f"{RUN}/ssd.txt",
                                  "-r", f"{RUN}/eval"], work)
    assert rc == 0 and (work / "eval" / "results.json").is_file(), out
    rc, out = docker_run(deploy, ["ssd", "evaluate", "-m", engines[emulator_images["5.0"]["deploy_image"]],
                                  "-e", f"{RUN}/ssd.txt", "-r", f"{RUN}/eval2"], work)
    assert rc == 1 and "please rebuild" in out
