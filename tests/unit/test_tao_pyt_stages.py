"""rtdetr's stages (TAO's PyTorch image, YAML specs): the best checkpoint from status.json, cut-off
checkpoints never chosen, the specs as written, resume, the key kept out of every spec, and the
pre-flight check of spec_overrides (no container needed)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from tlt_pipe.api import Quiet
from tlt_pipe.config import parse_config
from tlt_pipe.errors import ConfigError
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import Selection
from tlt_pipe.stages import tao_pyt

KEY = "s3cr3t-rtdetr-key"


def _checkpoint(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:  # what torch.save writes
        archive.writestr("archive/data.pkl", b"weights")


def _config(tmp_path: Path, extra: str = ""):
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    text = ("network: rtdetr\nname: r\ndataset: {path: data, classes: {plate: lpd, car: vehicle}}\n"
            "model: {arch: resnet_18, input_width: 512, input_height: 384}\n"
            "train: {epochs: 5, batch_size: 2, checkpoint_interval: 1, validation_period: 1}\n"
            "runner: {gpus: 0}\n" + extra)
    return parse_config(text, source="r.yaml", base_dir=tmp_path)


def _steps(tmp_path: Path, extra: str = "", **selection):
    pipeline = Pipeline(_config(tmp_path, extra), tmp_path / "run", key=KEY, events=Quiet())
    return {s.name: s for s in pipeline.dry_run(Selection(**selection))}


def _spec(step, name: str) -> dict:
    return yaml.safe_load(step.plan.specs[f"specs/{name}.yaml"])


def test_checkpoints_count_epochs_from_one_and_skip_cut_off_files_and_the_latest_link(tmp_path):
    train = tmp_path / "train"
    for number in (0, 1, 2):
        _checkpoint(train / f"model_epoch_{number:03d}.pth")
    (train / "model_epoch_003.pth").write_bytes(b"PK\x03\x04 cut off")  # killed while saving
    (train / "rtdetr_model_latest.pth").symlink_to(train / "model_epoch_002.pth")
    found = tao_pyt.checkpoints(train)
    assert [(c["epoch"], c["checkpoint"]) for c in found] == [
        (1, "model_epoch_000.pth"), (2, "model_epoch_001.pth"), (3, "model_epoch_002.pth")]


def test_each_epoch_gets_the_scores_written_up_to_its_epoch_entry():
    entries = [
        {"status": "STARTED", "message": "Starting Training Loop."},
        {"kpi": {"train_loss": 3.5}, "message": "Train metrics generated."},
        {"kpi": {"val_mAP": "0.2", "val_mAP50": "0.41", "val_loss": 2.0}, "message": "Eval metrics generated."},
        {"epoch": 1, "max_epoch": 3},
        {"kpi": {"train_loss": 2.5}},
        {"epoch": 2, "max_epoch": 3, "kpi": {"val_mAP": "0.3", "val_mAP50": "0.62", "val_loss": 1.5}},
        {"kpi": {"val_mAP50": "nan"}},
        {"epoch": 3, "max_epoch": 3},
    ]
    rows = tao_pyt.history(entries)
    assert rows[1] == {"train_loss": 3.5, "val_mAP": 0.2, "val_mAP50": 0.41, "val_loss": 2.0}
    assert rows[2] == {"train_loss": 2.5, "val_mAP": 0.3, "val_mAP50": 0.62, "val_loss": 1.5}
    assert rows[3] == {}  # a nan is no score


def test_the_best_checkpoint_has_the_highest_val_map50_or_is_the_newest_without_scores():
    found = [{"epoch": e, "checkpoint": tao_pyt.checkpoint_name(e)} for e in (1, 2, 3)]
    rows = {1: {"val_mAP50": 0.4}, 2: {"val_mAP50": 0.7}, 3: {"val_mAP50": 0.7}}
    assert tao_pyt.best(found, rows, None)["epoch"] == 2  # the earlier on a tie: 3 may repeat 2's scores
    assert tao_pyt.best(found, {1: {"val_mAP50": 0.9}}, None)["checkpoint"] == "model_epoch_000.pth"
    assert tao_pyt.best(found, {}, None)["epoch"] == 3
    assert tao_pyt.best(found, rows, 2)["checkpoint"] == "model_epoch_001.pth"
    with pytest.raises(ValueError, match="evaluate.epoch 9: no checkpoint of that epoch; epochs with one: 1, 2, 3"):
        tao_pyt.best(found, rows, 9)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        tao_pyt.best([], rows, None)


def test_the_plan_runs_each_task_in_its_image_with_a_spec_per_stage(tmp_path):
    steps = _steps(tmp_path)
    assert list(steps) == ["prepare", "train", "evaluate", "export", "engine", "evaluate_engine", "inference",
                           "inference_engine"]
    pyt, deploy = "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-pyt", "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy"
    assert {n: s.plan.image for n, s in steps.items() if n != "prepare"} == {
        "train": pyt, "evaluate": pyt, "export": pyt, "inference": pyt,
        "engine": deploy, "evaluate_engine": deploy, "inference_engine": deploy}
    assert steps["train"].argv == ["rtdetr", "train", "-e", "/tltpipe/run/specs/train.yaml",
                                   "results_dir=/tltpipe/run/train", "encryption_key=***"]
    assert steps["engine"].argv[:2] == ["rtdetr", "gen_trt_engine"]
    train = _spec(steps["train"], "train")
    assert train["dataset"]["train_data_sources"] == [
        {"image_dir": "/tltpipe/run/data/coco/train/images", "json_file": "/tltpipe/run/data/coco/train/annotations.json"}]
    assert train["dataset"]["val_data_sources"]["json_file"] == "/tltpipe/run/data/coco/val/annotations.json"
    assert train["dataset"]["num_classes"] == 3  # two classes and the unused id 0
    assert train["dataset"]["augmentation"]["train_spatial_size"] == [384, 512]  # [h, w]
    assert train["model"] == {"backbone": "resnet_18"}
    assert train["train"]["num_epochs"] == 5 and train["train"]["results_dir"] == "/tltpipe/run/train"
    assert train["train"]["resume_training_checkpoint_path"] is None
    # The best epoch is decided by the run: the plan shows it pending, the export's output is known.
    assert _spec(steps["evaluate"], "evaluate")["evaluate"]["checkpoint"] == "/tltpipe/run/train/model_epoch_<best>.pth"
    export = _spec(steps["export"], "export")["export"]
    engine = _spec(steps["engine"], "engine")["gen_trt_engine"]
    assert engine["onnx_file"] == export["onnx_file"] == "/tltpipe/run/export/rtdetr.onnx"
    assert engine["tensorrt"]["data_type"] == "FP32"
    assert _spec(steps["evaluate_engine"], "evaluate_engine")["evaluate"]["trt_engine"] == engine["trt_engine"]


def test_the_key_goes_to_the_task_and_never_into_a_spec(tmp_path):
    steps = _steps(tmp_path)
    for step in steps.values():
        for text in step.plan.specs.values():
            assert KEY not in text
        assert KEY not in " ".join(step.argv)
    assert f"encryption_key={KEY}" in steps["train"].plan.argv  # the runner keeps it out of logs and records


def test_spec_overrides_reach_the_spec_and_a_typo_is_refused_before_any_container(tmp_path):
    steps = _steps(tmp_path, "spec_overrides:\n  experiment: {model.num_queries: 100}\n  train: {train.optim.lr: 0.0002}\n")
    assert _spec(steps["train"], "train")["train"]["optim"]["lr"] == 0.0002
    assert _spec(steps["export"], "export")["model"]["num_queries"] == 100
    assert "optim" not in _spec(steps["export"], "export").get("train", {})
    with pytest.raises(ConfigError, match=r"r\.yaml:\d+: spec_overrides\.train\.train\.optim\.lrr: RT-DETR's spec "
                                          r"has no such key; did you mean train\.optim\.lr\?$"):
        _steps(tmp_path / "typo", "spec_overrides:\n  train: {train.optim.lrr: 0.0002}\n")


def test_a_section_given_as_a_mapping_is_merged_into_the_spec_not_put_in_its_place(tmp_path):
    text = ("spec_overrides:\n  experiment: {train: {optim: {lr: 0.5}}, dataset: {batch_size: 8}}\n"
            "  train: {train: {optim: {momentum: 0.8}}}\n")
    plain = _steps(tmp_path / "plain")
    steps = _steps(tmp_path / "merged", text)
    train, expected = _spec(steps["train"], "train"), _spec(plain["train"], "train")
    assert train["train"]["optim"]["lr"] == 0.5 and train["train"]["optim"]["momentum"] == 0.8
    assert train["train"]["num_epochs"] == expected["train"]["num_epochs"] == 5  # the rest of train is kept
    assert train["dataset"]["batch_size"] == 8
    assert {k: v for k, v in train["dataset"].items() if k != "batch_size"} == {
        k: v for k, v in expected["dataset"].items() if k != "batch_size"}  # sources, classes, sizes kept
    evaluate = _spec(steps["evaluate"], "evaluate")
    assert evaluate["dataset"]["batch_size"] == 8 and evaluate["dataset"]["test_data_sources"]
    assert "momentum" not in evaluate["train"].get("optim", {})  # the train group reaches train's spec alone


def test_resume_continues_from_the_newest_complete_checkpoint(tmp_path):
    train = tmp_path / "run" / "train"
    _checkpoint(train / "model_epoch_000.pth")
    _checkpoint(train / "model_epoch_001.pth")
    (train / "model_epoch_002.pth").write_bytes(b"cut off")
    fresh = _steps(tmp_path)["train"]
    assert fresh.plan.clean == ("train",) and fresh.plan.resumed_from is None
    resumed = _steps(tmp_path, resume=True)["train"].plan
    assert resumed.resumed_from["epoch"] == 2 and resumed.clean == ()
    assert yaml.safe_load(resumed.specs["specs/train.yaml"])["train"]["resume_training_checkpoint_path"] == \
        "/tltpipe/run/train/model_epoch_001.pth"
    # The fingerprint is the fresh run's: a resumed training is the same work.
    assert resumed.fingerprint_specs == fresh.plan.specs
    chosen = _steps(tmp_path, resume_epoch=1)["train"].plan
    assert chosen.resumed_from["checkpoint"] == "train/model_epoch_000.pth"


def test_an_architecture_rtdetr_does_not_build_is_refused_at_its_key(tmp_path):
    with pytest.raises(ConfigError, match="model.arch.*resnet_999.*resnet_18"):
        _config(tmp_path, "").model_copy()  # the valid one loads
        parse_config("network: rtdetr\nname: r\ndataset: {path: data}\nmodel: {arch: resnet_999}\n", source="r.yaml",
                     base_dir=tmp_path)


def test_the_toolkit_defaults_to_the_one_with_a_pytorch_image(tmp_path):
    config = _config(tmp_path)
    assert config.toolkit == "6.26.3"
    json.dumps(config.model_dump(mode="json"))  # the resolved config records it
