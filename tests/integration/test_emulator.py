"""The emulator images themselves, driven with the docker CLI: they must be as strict as the real
TAO containers (tao-contract.md), or the product's integration tests would prove nothing."""

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
    # TAO Deploy evaluate: -r is required, the images/labels come from validation_data_sources
    rc, out = docker_run(deploy, ["ssd", "evaluate", "-m", f"{RUN}/engine/trt.engine", "-e",
                                  f"{RUN}/ssd.txt", "-r", f"{RUN}/eval"], work)
    assert rc == 0 and "mAP" in out, out
    assert set(json.loads((work / "eval" / "results.json").read_text())) == {"AP_car", "AP_person", "mAP"}


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


def test_dataset_convert_strictness(emulator_images, work):
    img = emulator_images["4.0"]["image"]
    (work / "zero.txt").write_text(samples.kitti_convert_spec(f"{RUN}/data", val_split=0, num_shards=1))
    rc, out = docker_run(img, ["yolo_v4", "dataset_convert", "-d", f"{RUN}/zero.txt",
                               "-o", f"{RUN}/tf0/t", "-r", f"{RUN}/tf0"], work)
    assert rc == 0, out
    fold0 = (work / "tf0" / "t-fold-000-of-002-shard-00000-of-00001").read_text().splitlines()
    assert len(fold0) == 1  # header only: val_split 0 leaves the validation fold empty
    nodot = samples.kitti_convert_spec(f"{RUN}/data").replace('".png"', '"png"')
    (work / "nodot.txt").write_text(nodot)
    rc, out = docker_run(img, ["yolo_v4", "dataset_convert", "-d", f"{RUN}/nodot.txt",
                               "-o", f"{RUN}/tf1/t"], work)
    assert rc == 255 and "No such file or directory" in out
    (work / "data" / "labels" / "000003.txt").unlink()
    rc, out = docker_run(img, ["yolo_v4", "dataset_convert", "-d", f"{RUN}/convert.txt",
                               "-o", f"{RUN}/tf2/t"], work)
    assert rc == 255 and "000003" in out


def test_yolo_v4_spec_driven_resume(emulator_images, work):
    img = emulator_images["4.0"]["image"]
    _convert(img, work)
    tf, data = f"{RUN}/tfrecords/train", f"{RUN}/data"
    (work / "y.txt").write_text(samples.yolo_v4_spec(
        tf, data, epochs=3, ckpt=2, load_model=f'pretrain_model_path: "{RUN}/resnet_18.hdf5"'))
    rc, out = docker_run(img, ["yolo_v4", "train", "-e", f"{RUN}/y.txt", "-r", f"{RUN}/train", "-k", KEY], work)
    assert rc == 0, out
    weights = sorted(p.name for p in (work / "train" / "weights").iterdir())
    assert weights == ["yolov4_resnet18_epoch_002.tlt", "yolov4_resnet18_epoch_003.tlt"]  # + last epoch
    assert (work / "train" / "model_output_labels.txt").read_text().split() == ["car", "person"]
    ckpt2 = f"{RUN}/train/weights/yolov4_resnet18_epoch_002.tlt"
    (work / "resume.txt").write_text(samples.yolo_v4_spec(
        tf, data, epochs=3, ckpt=2, load_model=f'resume_model_path: "{ckpt2}"'))
    rc, out = docker_run(img, ["yolo_v4", "train", "-e", f"{RUN}/resume.txt", "-r", f"{RUN}/train", "-k", KEY], work)
    assert rc == 0 and "Epoch 3/3" in out and "Epoch 2/3" not in out
    csv = (work / "train" / "yolov4_training_log_resnet18.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in csv[1:]] == ["3"]  # overwritten by the resumed run
    (work / "train" / "weights" / "best.tlt").write_bytes(
        (work / "train" / "weights" / "yolov4_resnet18_epoch_002.tlt").read_bytes())
    (work / "renamed.txt").write_text(samples.yolo_v4_spec(
        tf, data, epochs=3, load_model=f'resume_model_path: "{RUN}/train/weights/best.tlt"'))
    rc, out = docker_run(img, ["yolo_v4", "train", "-e", f"{RUN}/renamed.txt", "-r", f"{RUN}/t2", "-k", KEY], work)
    assert rc == 255 and "invalid literal for int()" in out
    rc, out = docker_run(img, ["yolo_v4", "prune", "-m", ckpt2, "-o", f"{RUN}/p.tlt", "-k", KEY], work)
    assert rc == 2 and "-e/--experiment_spec_path" in out
    rc, out = docker_run(img, ["ssd", "evaluate", "-e", f"{RUN}/y.txt", "-m", ckpt2, "-k", KEY], work)
    assert rc == 255  # a YOLO spec and model are not SSD's
    rc, out = docker_run(img, ["yolo_v4", "kmeans", "-l", f"{RUN}/data/labels", "-i", f"{RUN}/data/images",
                               "-x", "320", "-y", "320", "-n", "9"], work)
    assert rc == 0, out
    lines = out.split("Please use following anchor sizes in YOLO config:")[1].split()
    assert len([x for x in lines if x.startswith("(")]) == 9


def test_onnx_etlt_needs_an_optimization_profile(emulator_images, work):
    img = emulator_images["3.22.05"]["image"]
    _convert(img, work)
    (work / "ssd.txt").write_text(samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/data", epochs=1))
    assert docker_run(img, ["ssd", "train", "-e", f"{RUN}/ssd.txt", "-r", f"{RUN}/t", "-k", KEY], work)[0] == 0
    etlt = f"{RUN}/m.etlt"
    rc, out = docker_run(img, ["ssd", "export", "-m", f"{RUN}/t/weights/ssd_resnet18_epoch_001.tlt",
                               "-k", KEY, "-o", etlt, "-e", f"{RUN}/ssd.txt"], work)
    assert rc == 0, out
    assert (work / "m.etlt").read_bytes()[:4] == b"\0\0\0\0"  # ONNX inside
    conv = ["converter", "-k", KEY, "-e", f"{RUN}/e.engine"]
    assert docker_run(img, conv + ["-d", "3,320,320", "-o", "NMS", etlt], work)[0] == 255
    rc, out = docker_run(img, conv + ["-p", "Input,1x3x320x320,8x3x320x320,16x3x320x320", etlt], work)
    assert rc == 0, out
    rc, out = docker_run(img, conv + ["-t", "int8", "-p", "Input,1x3x320x320,8x3x320x320,16x3x320x320",
                                      etlt], work)
    assert rc == 255 and "-c" in out


def test_detectnet_v2_on_tlt2(emulator_images, work):
    img = emulator_images["2.0"]["image"]
    rc, out = docker_run(img, ["tlt-dataset-convert", "-d", f"{RUN}/convert.txt", "-o", f"{RUN}/tfr/t"], work)
    assert rc == 0, out
    tf, data = f"{RUN}/tfr/t", f"{RUN}/data"
    (work / "dn.txt").write_text(samples.detectnet_v2_spec(tf, data, epochs=2, ckpt=1, val_period=2,
                                                          pretrained=f"{RUN}/resnet_18.hdf5"))
    train = ["tlt-train", "detectnet_v2", "-e", f"{RUN}/dn.txt", "-r", f"{RUN}/train", "-k", KEY, "-n", "det"]
    rc, out = docker_run(img, train, work)
    assert rc == 0 and "Mean average_precision (in %):" in out, out
    assert sorted(p.name for p in (work / "train").glob("*.ckzip")) == ["model.epoch-1.ckzip", "model.epoch-2.ckzip"]
    assert (work / "train" / "weights" / "det.tlt").exists()
    (work / "dn.txt").write_text(samples.detectnet_v2_spec(tf, data, epochs=3, ckpt=1, val_period=2,
                                                          pretrained=f"{RUN}/resnet_18.hdf5"))
    rc, out = docker_run(img, train, work)  # same results dir: resumes from the newest .ckzip
    assert rc == 0 and "Epoch 3/3" in out and "Epoch 2/3" not in out
    rc, out = docker_run(img, ["tlt-int8-tensorfile", "detectnet_v2", "-e", f"{RUN}/dn.txt",
                               "-o", f"{RUN}/x/cal.tensorfile", "-m", "3"], work)
    assert rc == 0, out
    rc, out = docker_run(img, ["tlt-export", "detectnet_v2", "-m", f"{RUN}/train/weights/det.tlt",
                               "-o", f"{RUN}/x/det.etlt", "-k", KEY, "--data_type", "int8",
                               "--cal_data_file", f"{RUN}/x/cal.tensorfile", "--cal_cache_file",
                               f"{RUN}/x/cal.bin", "--batches", "3", "--batch_size", "4"], work)
    assert rc == 0, out
    rc, out = docker_run(img, ["tlt-converter", "-k", KEY, "-d", "3,320,320", "-o",
                               "output_cov/Sigmoid,output_bbox/BiasAdd", "-t", "int8", "-c",
                               f"{RUN}/x/cal.bin", "-e", f"{RUN}/x/det.engine", f"{RUN}/x/det.etlt"], work)
    assert rc == 0, out
    assert docker_run(img, ["tlt-train", "yolo_v4", "-e", "x", "-r", "y"], work)[0] == 2  # no YOLOv4 in TLT 2


def test_fault_injection_switches(emulator_images, work):
    img = emulator_images["5.0"]["image"]
    _convert(img, work)
    (work / "ssd.txt").write_text(samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/data", epochs=6))
    train = ["ssd", "train", "-e", f"{RUN}/ssd.txt", "-k", "s3cr3t-key"]
    rc, out = docker_run(img, train + ["-r", f"{RUN}/a"], work,
                         env={"TAO_EMU_FAIL_AT_EPOCH": "3", "TAO_EMU_PRINT_KEY": "1"})
    assert rc == 255 and out.rstrip().endswith("Execution status: FAIL")
    assert "s3cr3t-key" in out
    assert len((work / "a" / "ssd_training_log_resnet18.csv").read_text().splitlines()) == 3
    assert json.loads((work / "a" / "status.json").read_text().splitlines()[-1])["status"] == "FAILURE"
    rc, out = docker_run(img, train + ["-r", f"{RUN}/b"], work,
                         env={"TAO_EMU_EXIT_CODE": "137", "TAO_EMU_TRUNCATE_CHECKPOINT": "2"})
    assert rc == 137 and "Execution status" not in out
    assert (work / "b" / "weights" / "ssd_resnet18_epoch_002.hdf5").stat().st_size == 0
    rc, out = docker_run(img, ["ssd", "evaluate", "-e", f"{RUN}/ssd.txt", "-m",
                               f"{RUN}/b/weights/ssd_resnet18_epoch_002.hdf5"], work)
    assert rc == 255 and "file signature not found" in out


def test_sigint_reports_pass_and_sigterm_exits_promptly(emulator_images, work):
    img = emulator_images["5.0"]["image"]
    _convert(img, work)
    (work / "ssd.txt").write_text(samples.ssd_spec(f"{RUN}/tfrecords/train", f"{RUN}/data", epochs=6))
    base = ["docker", "run", "-d", "--user", "1000:1000", "-v", f"{work}:{RUN}", "-e", "TAO_EMU_HANG=1",
            img, "ssd", "train", "-e", f"{RUN}/ssd.txt", "-r", f"{RUN}/t", "-k", KEY]
    for signal_cmd, expected_rc, expected_line in (
        (["docker", "kill", "-s", "INT"], 0, "Command was interrupted."),
        (["docker", "stop", "-t", "20"], 143, "Terminated."),
    ):
        cid = subprocess.run(base, stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        try:
            for _ in range(100):
                logs = subprocess.run(["docker", "logs", cid], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT).stdout.decode()
                if "sleeping until stopped" in logs:
                    break
                time.sleep(0.1)
            subprocess.run(signal_cmd + [cid], stdout=subprocess.DEVNULL, check=True, timeout=15)
            rc = int(subprocess.run(["docker", "wait", cid], stdout=subprocess.PIPE,
                                    timeout=15).stdout.decode().strip())
            logs = subprocess.run(["docker", "logs", cid], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT).stdout.decode()
            assert rc == expected_rc and expected_line in logs
        finally:
            subprocess.run(["docker", "rm", "-f", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_entrypoint_rules(emulator_images, work):
    """The task is the first argument; the TF1 entrypoint asserts its GPU flags; TAO Deploy takes no
    --gpus and no -k on evaluate, and exits 1 when a task fails."""
    img, deploy = emulator_images["5.0"]["image"], emulator_images["5.0"]["deploy_image"]
    rc, out = docker_run(img, ["ssd", "--gpus", "1", "train", "-e", "x", "-r", "y"], work)
    assert rc == 1 and "KeyError" in out and "Execution status" not in out
    rc, out = docker_run(img, ["ssd", "evaluate", "-m", "x", "-e", "y", "--gpus", "2", "--gpu_index", "0", "1"], work)
    assert rc == 1 and "only 1 GPU" in out
    rc, out = docker_run(deploy, ["ssd", "gen_trt_engine", "-m", "x", "-e", "y", "-r", f"{RUN}/g", "--gpus", "1"], work)
    assert rc == 2 and "unrecognized arguments: --gpus 1" in out
    rc, out = docker_run(deploy, ["ssd", "evaluate", "-m", "x", "-e", "y", "-r", f"{RUN}/g", "-k", KEY], work)
    assert rc == 2 and "unrecognized arguments: -k" in out
    rc, out = docker_run(deploy, ["ssd", "gen_trt_engine", "-m", f"{RUN}/missing.onnx", "-e", f"{RUN}/missing.txt",
                                  "-r", f"{RUN}/g"], work)
    assert rc == 1 and out.rstrip().endswith("Execution status: FAIL")


def test_retinanet_and_dssd_tao5(emulator_images, work):
    img = emulator_images["5.0"]["image"]
    _convert(img, work)
    tf, data = f"{RUN}/tfrecords/train", f"{RUN}/data"
    pretrained = f'pretrain_model_path: "{RUN}/resnet_18.hdf5"'
    (work / "r.txt").write_text(samples.retinanet_spec(tf, data, epochs=3, ckpt=2, load_model=pretrained))
    train = ["retinanet", "train", "-e", f"{RUN}/r.txt", "-r", f"{RUN}/r", "-k", KEY]
    assert docker_run(img, train + ["-m", f"{RUN}/resnet_18.hdf5"], work)[0] == 2  # no -m: a spec field
    rc, out = docker_run(img, train, work)
    assert rc == 0, out
    weights = sorted(p.name for p in (work / "r" / "weights").iterdir())
    assert weights == ["retinanet_resnet18_epoch_002.hdf5", "retinanet_resnet18_epoch_003.hdf5"]  # + last epoch
    ckpt2 = f"{RUN}/r/weights/retinanet_resnet18_epoch_002.hdf5"
    (work / "r.txt").write_text(samples.retinanet_spec(tf, data, epochs=3, ckpt=2,
                                                       load_model=f'resume_model_path: "{ckpt2}"'))
    rc, out = docker_run(img, train, work)
    assert rc == 0 and "Epoch 3/3" in out and "Epoch 2/3" not in out, out
    csv = (work / "r" / "retinanet_training_log_resnet18.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in csv[1:]] == ["1", "2", "3", "3"]  # RetinaNet appends
    # `ssd` runs DSSD when the spec has a dssd_config (one entrypoint for both)
    (work / "d.txt").write_text(samples.dssd_spec(tf, data, epochs=1))
    rc, out = docker_run(img, ["ssd", "train", "-e", f"{RUN}/d.txt", "-r", f"{RUN}/d"], work)
    assert rc == 0, out
    assert (work / "d" / "weights" / "dssd_resnet18_epoch_001.hdf5").exists()
    rc, out = docker_run(img, ["ssd", "prune", "-m", f"{RUN}/d/weights/dssd_resnet18_epoch_001.hdf5",
                               "-o", f"{RUN}/p/pruned"], work)
    assert rc == 0 and (work / "p" / "pruned.hdf5").exists(), out  # TAO 5 appends .hdf5
