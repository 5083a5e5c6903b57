"""The emulator images themselves, driven with the docker CLI: they must be as strict as the real
TAO containers (tao-contract.md), or the product's integration tests would prove nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulator"))
import emu_samples as samples  # noqa: E402

pytestmark = pytest.mark.docker

RUN = "/tltpipe/run"
KEY = "tlt_encode"


def docker_run(image, argv, work: Path, env=None, user="1000:1000", timeout=60):
    cmd = ["docker", "run", "--rm", "--user", user, "-v", f"{work}:{RUN}"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    cmd += [image, *argv]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


@pytest.fixture
def work(tmp_path):
    """A run directory the container's non-root user can write, with a KITTI dataset in it."""
    d = tmp_path / "run"
    d.mkdir()
    os.chmod(d, 0o777)
    samples.write_kitti_dataset(str(d / "data"), n_images=20)
    samples.write_pretrained(str(d / "resnet_18.hdf5"))
    (d / "convert.txt").write_text(samples.kitti_convert_spec(f"{RUN}/data", val_split=20))
    return d


def _convert(image, work):
    rc, out = docker_run(image, ["ssd", "dataset_convert", "-d", f"{RUN}/convert.txt",
                                 "-o", f"{RUN}/tfrecords/train"], work)
    assert rc == 0, out
    return out


def test_unknown_flag_is_an_argparse_error(emulator_images, work):
    rc, out = docker_run(emulator_images["5.0"]["image"],
                         ["ssd", "train", "-e", "x", "-r", "y", "--no_such_flag"], work)
    assert rc == 2
    assert "unrecognized arguments: --no_such_flag" in out
    # YOLO train takes -e -r -k only
    rc, out = docker_run(emulator_images["3.21.11"]["image"],
                         ["yolo_v4", "train", "-e", "x", "-r", "y", "-m", "z"], work)
    assert rc == 2 and "unrecognized arguments: -m z" in out


def test_commands_that_do_not_exist_in_a_version(emulator_images, work):
    assert docker_run(emulator_images["5.0"]["image"], ["converter", "-h"], work)[0] == 127
    assert docker_run(emulator_images["3.21.11"]["image"], ["tlt-train", "ssd"], work)[0] == 127
    assert docker_run(emulator_images["2.0"]["image"], ["ssd", "train"], work)[0] == 127
    rc, out = docker_run(emulator_images["5.0"]["deploy_image"], ["ssd", "train"], work)
    assert rc == 2 and "invalid choice: 'train'" in out
    rc, out = docker_run(emulator_images["5.0"]["image"], ["ssd", "gen_trt_engine"], work)
    assert rc == 2 and "invalid choice" in out


def test_unknown_spec_field_fails_naming_it(emulator_images, work):
    text = samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/data")
    (work / "bad.txt").write_text(text.replace("clip_boxes: false", "clip_boxes: false\n  clip_boxs: true"))
    rc, out = docker_run(emulator_images["5.0"]["image"],
                         ["ssd", "train", "-e", f"{RUN}/bad.txt", "-r", f"{RUN}/out"], work)
    assert rc == 255
    assert 'has no field named "clip_boxs"' in out
    assert out.rstrip().endswith("Execution status: FAIL")


def test_ssd_chain_tao5(emulator_images, work):
    img, deploy = emulator_images["5.0"]["image"], emulator_images["5.0"]["deploy_image"]
    out = _convert(img, work)
    assert "Tfrecords generation complete." in out and out.rstrip().endswith("Execution status: PASS")
    shards = sorted(p.name for p in (work / "tfrecords").iterdir())
    assert shards == [f"train-fold-{p:03d}-of-002-shard-{s:05d}-of-00002" for p in (0, 1) for s in (0, 1)]
    (work / "ssd.txt").write_text(samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/data",
                                                   epochs=4, ckpt=2, val_period=2))
    rc, out = docker_run(img, ["ssd", "train", "-e", f"{RUN}/ssd.txt", "-r", f"{RUN}/train",
                               "-k", KEY, "-m", f"{RUN}/resnet_18.hdf5", "--gpus", "1"], work)
    assert rc == 0, out
    assert "Epoch 3/4" in out and "Epoch 00004: saving model to" in out and "Validation loss:" in out
    weights = sorted(p.name for p in (work / "train" / "weights").iterdir())
    assert weights == ["ssd_resnet18_epoch_002.hdf5", "ssd_resnet18_epoch_004.hdf5"]
    csv = (work / "train" / "ssd_training_log_resnet18.csv").read_text().splitlines()
    assert csv[0] == "epoch,AP_car,AP_person,loss,lr,mAP,validation_loss"
    assert [r.split(",")[0] for r in csv[1:]] == ["1", "2", "3", "4"]
    assert csv[1].split(",")[-1] == "nan" and csv[2].split(",")[-1] != "nan"
    status = [json.loads(line) for line in (work / "train" / "status.json").read_text().splitlines()]
    assert status[0]["status"] == "STARTED" and status[-1]["status"] == "SUCCESS"
    assert {"epoch", "max_epoch", "time_per_epoch", "eta", "graphical"} <= set(status[2])
    ckpt = f"{RUN}/train/weights/ssd_resnet18_epoch_004.hdf5"
    rc, ev = docker_run(img, ["ssd", "evaluate", "-e", f"{RUN}/ssd.txt", "-m", ckpt], work)
    assert rc == 0 and "mAP" in ev
    # evaluate reproduces the validation numbers of that epoch (deterministic)
    assert csv[4].split(",")[5] in ev
    rc, pr = docker_run(img, ["ssd", "prune", "-m", ckpt, "-o", f"{RUN}/prune/pruned.hdf5",
                              "-eq", "intersection", "-pth", "0.1"], work)
    assert rc == 0 and "Pruning ratio (pruned model / original model): " in pr
    onnx = f"{RUN}/export/model.onnx"
    args = ["ssd", "export", "-m", f"{RUN}/prune/pruned.hdf5", "-o", onnx, "-e", f"{RUN}/ssd.txt",
            "--gen_ds_config"]
    rc, ex = docker_run(img, args, work)
    assert rc == 0 and f"Saving exported model to {onnx}" in ex
    assert (work / "export" / "labels.txt").read_text().split() == ["background", "car", "person"]
    rc, ex = docker_run(img, args, work)
    assert rc == 255 and "already exists" in ex
    rc, out = docker_run(deploy, ["ssd", "gen_trt_engine", "-m", onnx, "-e", f"{RUN}/ssd.txt",
                                  "-r", f"{RUN}/engine", "--engine_file", f"{RUN}/engine/trt.engine"],
                         work)
    assert rc == 0, out
    rc, out = docker_run(deploy, ["ssd", "inference", "-m", f"{RUN}/engine/trt.engine", "-e",
                                  f"{RUN}/ssd.txt", "-i", f"{RUN}/data/images", "-r", f"{RUN}/infer"],
                         work)
    assert rc == 0, out
    label = (work / "infer" / "labels" / "000001.txt").read_text().splitlines()
    assert all(len(line.split()) == 16 for line in label)
    assert (work / "infer" / "images_annotated" / "000001.png").exists()


def test_ssd_chain_tao3_keys_etlt_converter(emulator_images, work):
    img = emulator_images["3.21.11"]["image"]
    _convert(img, work)
    (work / "ssd.txt").write_text(samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/data",
                                                   epochs=2, ckpt=1, val_period=1))
    rc, out = docker_run(img, ["ssd", "train", "-e", f"{RUN}/ssd.txt", "-r", f"{RUN}/train",
                               "-k", KEY, "-m", f"{RUN}/resnet_18.hdf5"], work)
    assert rc == 0, out
    ckpt = f"{RUN}/train/weights/ssd_resnet18_epoch_002.tlt"
    assert (work / "train" / "weights" / "ssd_resnet18_epoch_002.tlt").exists()
    assert not (work / "train" / "status.json").exists()  # TAO 3 writes none
    rc, out = docker_run(img, ["ssd", "evaluate", "-e", f"{RUN}/ssd.txt", "-m", ckpt, "-k", "nope"], work)
    assert rc == 255 and "The key used to load the model is incorrect." in out
    etlt = f"{RUN}/export/model.etlt"
    rc, out = docker_run(img, ["ssd", "export", "-m", ckpt, "-o", etlt, "-k", KEY,
                               "-e", f"{RUN}/ssd.txt"], work)
    assert rc == 0, out
    raw = (work / "export" / "model.etlt").read_bytes()
    assert int.from_bytes(raw[:4], "little") == 5 and raw[4:9] == b"Input"  # UFF on 3.21.11
    conv = ["converter", "-k", KEY, "-d", "3,320,320", "-e", f"{RUN}/export/trt.engine",
            "-m", "16", "-t", "fp32", "-i", "nchw"]
    rc, out = docker_run(img, conv + ["-o", "BatchedNMS", etlt], work)
    assert rc == 255 and "NMS" in out
    rc, out = docker_run(img, conv + ["-o", "NMS", etlt], work)
    assert rc == 0, out
    rc, out = docker_run(img, ["ssd", "inference", "-e", f"{RUN}/ssd.txt", "-m",
                               f"{RUN}/export/trt.engine", "-i", f"{RUN}/data/images",
                               "-o", f"{RUN}/infer/images", "-l", f"{RUN}/infer/labels", "-k", KEY],
                         work)
    assert rc == 0, out
    assert len(list((work / "infer" / "labels").iterdir())) == 20
