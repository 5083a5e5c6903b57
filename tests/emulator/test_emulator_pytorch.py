"""Unit tests of the RT-DETR / DINO tasks of TAO 6.26.3's PyTorch and deploy images (no Docker): the
emulator package runs in-process with NVIDIA's ExperimentConfig dataclasses (nvidia-tao-core, from the
reference cache) on sys.path."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import emu_samples as samples  # noqa: E402
from tao_emulator import catalog, detr, experiment, main  # noqa: E402
from tao_emulator.runtime import TaskFailed  # noqa: E402

pytest.importorskip("omegaconf")
KEY = "tlt_encode"


@pytest.fixture
def work(tmp_path):
    samples.write_coco_dataset(str(tmp_path / "data"))
    return tmp_path


def spec(work: Path, net: str = "rtdetr", name: str = "spec.yaml", **kw) -> str:
    path = work / name
    path.write_text(samples.detr_spec(str(work / "data"), str(work / "results"), net=net, **kw))
    return str(path)


def run(monkeypatch, capsys, role: str, net: str, *argv: str) -> tuple[int, str]:
    """The image's entrypoint in-process: (exit code, console)."""
    monkeypatch.setenv("TAO_EMU_VERSION", "6.26.3")
    monkeypatch.setenv("TAO_EMU_ROLE", role)
    saved = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as info:
            main.entry(net, list(argv))
    finally:
        signal.signal(signal.SIGTERM, saved)
    return info.value.code, capsys.readouterr().out


def status(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# images, commands


def test_catalog_of_the_626_images():
    assert catalog.commands("6.26.3", "pyt") == ["rtdetr", "dino"]
    assert catalog.commands("6.26.3", "deploy") == list(catalog.TF_NETS) + ["rtdetr", "dino"]
    assert catalog.subcommands("dino", "6.26.3", "pyt") == ("train", "evaluate", "inference", "export")
    assert catalog.subcommands("rtdetr", "6.26.3", "deploy") == ("gen_trt_engine", "evaluate", "inference")
    assert catalog.TRT_VERSIONS[("6.26.3", "deploy")].startswith("10.")
    assert catalog.schema_version("6.26.3") == "5.0"
    with pytest.raises(ValueError):
        catalog.commands("6.26.3", "tf")  # its TF1 networks run in TAO 5.0's TF image
    with pytest.raises(ValueError):
        catalog.commands("5.0", "pyt")


def test_version_table_maps_626_to_the_tf_50_image():
    sys.path.insert(0, str(HERE))
    import build  # noqa: PLC0415

    table = build.version_table()
    assert table["6.26.3"] == {"image": "tltpipe-emulator:tf-5.0",
                               "deploy_image": "tltpipe-emulator:deploy-6.26.3",
                               "pyt_image": "tltpipe-emulator:pyt-6.26.3"}
    assert table["5.0"] == {"image": "tltpipe-emulator:tf-5.0", "deploy_image": "tltpipe-emulator:deploy-5.0",
                            "pyt_image": None}
    assert all("pyt_image" in entry for entry in table.values())
    assert "python3-omegaconf" in build.INCLUDE
    pylib = build.pylib_files("6.26.3")
    assert "nvidia_tao_core/config/rtdetr/default_config.py" in pylib and build.pylib_files("5.0") == {}
    assert build.definitions("6.26.3", "pyt") == {}
    assert build.definitions("6.26.3", "deploy").keys() == build.definitions("5.0", "deploy").keys()


def test_deploy_626_serves_the_tf1_networks_as_deploy_50():
    """Same TAO Deploy parsers (nvidia-tao-deploy 6.26.3) and spec schemas; only TensorRT differs."""
    from tao_emulator import nvidia, parsers  # noqa: PLC0415

    _, deploy_cli = nvidia.reference()
    for net in catalog.TF_NETS:
        for task in catalog.DEPLOY_SUBCOMMANDS:
            ours = [deploy_cli.flatten(parsers.build(f"{net} {task}", net, task, version, "deploy"))
                    for version in ("5.0", "6.26.3")]
            assert ours[0] == ours[1], (net, task)
    assert catalog.TRT_VERSIONS[("6.26.3", "deploy")] != catalog.TRT_VERSIONS[("5.0", "deploy")]


# ---------------------------------------------------------------------------------------------
# command line and overrides


@pytest.mark.parametrize("text, expected", [
    ("train.num_epochs=10", ("set", "train.num_epochs", 10)),
    ("train.optim.lr=1.5e-4", ("set", "train.optim.lr", 1.5e-4)),
    ("model.backbone=resnet_18", ("set", "model.backbone", "resnet_18")),
    ("train.gpu_ids=[0,1]", ("set", "train.gpu_ids", [0, 1])),
    ("train.resume_training_checkpoint_path=null", ("set", "train.resume_training_checkpoint_path", None)),
    ("results_dir=", ("set", "results_dir", "")),
    ("encryption_key='a=b'", ("set", "encryption_key", "a=b")),
    ("+inference.color_map={car: red}", ("add", "inference.color_map", {"car": "red"})),
    ("++train.seed=3", ("force", "train.seed", 3)),
    ("~train.freeze", ("delete", "train.freeze", None)),
])
def test_override_parsing(text, expected):
    assert experiment.parse_override(text) == expected


@pytest.mark.parametrize("text", ["train", "=3", "train..num_epochs=3", "--gpus=1", "a b=1"])
def test_an_argument_that_is_not_key_value_is_an_error(text):
    with pytest.raises(experiment.ConfigError, match="Error parsing override"):
        experiment.parse_override(text)


def test_spec_then_overrides_are_merged_into_nvidias_dataclass(work):
    cfg = experiment.compose("rtdetr", spec(work), ["train.num_epochs=7", "dataset.batch_size=8"])
    assert cfg.train.num_epochs == 7 and cfg.dataset.batch_size == 8
    assert cfg.train.optim.optimizer == "AdamW"  # a default of NVIDIA's dataclass
    assert experiment.omegaconf().OmegaConf.get_type(cfg.train).__name__ == "RTTrainExpConfig"


@pytest.mark.parametrize("net", ["rtdetr", "dino"])
def test_unknown_key_is_refused_naming_it(work, net):
    with pytest.raises(experiment.ConfigError) as info:
        experiment.compose(net, spec(work, net), ["train.num_epoch=3"])
    assert "Could not override 'train.num_epoch'" in str(info.value)
    assert "full_key: train.num_epoch" in str(info.value)
    bad = work / "bad.yaml"
    bad.write_text(Path(spec(work, net)).read_text().replace("  num_epochs: 2", "  num_epochs: 2\n  epochs: 2"))
    with pytest.raises(experiment.ConfigError) as info:
        experiment.compose(net, str(bad), [])
    assert "Error merging 'bad.yaml' with schema" in str(info.value)
    assert "Key 'epochs' not in" in str(info.value) and "full_key: train.epochs" in str(info.value)


def test_wrong_type_is_refused_naming_the_key(work):
    with pytest.raises(experiment.ConfigError) as info:
        experiment.compose("rtdetr", spec(work), ["train.num_epochs=abc"])
    assert "ValidationError" in str(info.value) and "full_key: train.num_epochs" in str(info.value)
    bad = work / "bad.yaml"
    bad.write_text(Path(spec(work)).read_text().replace("num_classes: 3", "num_classes: three"))
    with pytest.raises(experiment.ConfigError, match="full_key: dataset.num_classes"):
        experiment.compose("rtdetr", str(bad), [])


def test_a_mapping_where_dino_wants_a_list_is_refused_naming_the_key(work):
    """DINO's val_data_sources is a list of sources, RT-DETR's a single mapping."""
    with pytest.raises(experiment.ConfigError, match="full_key: dataset.val_data_sources"):
        experiment.compose("dino", spec(work, "rtdetr"), [])
    with pytest.raises(experiment.ConfigError, match="full_key: dataset.val_data_sources"):
        experiment.compose("rtdetr", spec(work, "dino"), [])


def test_usage_errors(work, monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train")
    assert code == 1 and out.strip() == ("ERROR: The subtask `train` requires the following argument: "
                                         "-e/--experiment_spec_file")
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", str(work / "nope.yaml"))
    assert code == 1 and "doesn't exist" in out and len(out.strip().splitlines()) == 1
    code, _ = run(monkeypatch, capsys, "pyt", "rtdetr", "gen_trt_engine", "-e", spec(work))
    assert code == 2  # argparse: invalid choice (a deploy task in the PyTorch image)
    code, _ = run(monkeypatch, capsys, "deploy", "dino", "train", "-e", spec(work, "dino"))
    assert code == 2
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work), "num_epochs")
    assert code == 1 and "Error parsing override 'num_epochs'" in out
    assert out.rstrip().endswith("Execution status: FAIL")
    assert not (work / "results").exists()  # the config never composed: nothing written


def test_misspelt_key_fails_the_task(work, monkeypatch, capsys):
    bad = work / "bad.yaml"
    bad.write_text(Path(spec(work)).read_text().replace("batch_size: 2", "batch_sise: 2"))
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", str(bad))
    assert code == 1 and "Key 'batch_sise' not in 'RTDatasetConfig'" in out
    assert "full_key: dataset.batch_sise" in out


# ---------------------------------------------------------------------------------------------
# required inputs, results folders


@pytest.mark.parametrize("task, override, needle", [
    ("evaluate", None, "Missing mandatory value: evaluate.checkpoint"),
    ("inference", None, "Missing mandatory value: inference.checkpoint"),
    ("export", "export.checkpoint=x.pth", "Missing mandatory value: export.onnx_file"),
    ("train", "dataset.train_data_sources=null", "dataset.train_data_sources is not set"),
    ("train", "dataset.val_data_sources=null", "dataset.val_data_sources is not set"),
])
def test_missing_required_input_is_refused(work, monkeypatch, capsys, task, override, needle):
    argv = [task, "-e", spec(work)] + ([override] if override else [])
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", *argv)
    assert code == 1 and needle in out, out


@pytest.mark.parametrize("task, override, needle", [
    ("gen_trt_engine", None, "Missing mandatory value: gen_trt_engine.onnx_file"),
    ("gen_trt_engine", "gen_trt_engine.onnx_file=m.onnx", "Missing mandatory value: gen_trt_engine.trt_engine"),
    ("evaluate", None, "evaluate.trt_engine is not set"),
    ("inference", None, "inference.trt_engine is not set"),
])
def test_missing_deploy_input_is_refused(work, monkeypatch, capsys, task, override, needle):
    argv = [task, "-e", spec(work, "dino")] + ([override] if override else [])
    code, out = run(monkeypatch, capsys, "deploy", "dino", *argv)
    assert code == 1 and needle in out, out


def test_results_folder_of_a_task(work):
    cfg = experiment.compose("rtdetr", spec(work), [])
    top = str(work / "results")
    assert experiment.results_dir(cfg, "train", "pyt") == f"{top}/train"
    assert experiment.results_dir(cfg, "export", "pyt") == f"{top}/export"
    assert experiment.results_dir(cfg, "evaluate", "deploy") == f"{top}/trt_evaluate"
    assert experiment.results_dir(cfg, "inference", "deploy") == f"{top}/trt_inference"
    assert experiment.results_dir(cfg, "gen_trt_engine", "deploy") == f"{top}/gen_trt_engine"
    cfg = experiment.compose("rtdetr", spec(work), ["train.results_dir=/elsewhere", "results_dir="])
    assert experiment.results_dir(cfg, "train", "pyt") == "/elsewhere"
    with pytest.raises(TaskFailed, match="results_dir, evaluate.results_dir"):
        experiment.results_dir(cfg, "evaluate", "pyt")


@pytest.mark.parametrize("net, extra, fails", [
    ("rtdetr", [], False),
    ("rtdetr", ["dataset.num_classes=2"], True),  # category id 2 needs num_classes >= 3
    ("dino", ["dataset.num_classes=2"], True),
    ("dino", ["dataset.num_classes=2", "dataset.contiguous_labels=true"], True),  # 1..2 -> still 3
    ("dino", ["dataset.num_classes=3", "dataset.contiguous_labels=true"], False),
    ("rtdetr", ["dataset.remap_mscoco_category=true", "dataset.num_classes=80"], False),  # 1, 2 -> 0, 1
])
def test_category_ids_against_num_classes(work, net, extra, fails):
    cfg = experiment.compose(net, spec(work, net), extra)
    sets = detr.read_sources(cfg, "dataset.train_data_sources")
    if fails:
        with pytest.raises(TaskFailed, match="out of range for dataset.num_classes"):
            detr.check_categories(cfg, net, sets)
    else:
        detr.check_categories(cfg, net, sets)


def test_coco_file_problems(work):
    doc = json.loads((work / "data" / "annotations.json").read_text())
    with pytest.raises(TaskFailed, match="No such file or directory"):
        detr.read_coco(str(work / "data" / "missing.json"), str(work / "data" / "images"))
    (work / "broken.json").write_text("{not json")
    with pytest.raises(TaskFailed, match="JSONDecodeError"):
        detr.read_coco(str(work / "broken.json"), str(work / "data" / "images"))
    os.remove(work / "data" / "images" / doc["images"][0]["file_name"])
    with pytest.raises(TaskFailed, match="No such file or directory.*000000.png"):
        detr.read_coco(str(work / "data" / "annotations.json"), str(work / "data" / "images"))
    del doc["annotations"][0]["area"]
    (work / "noarea.json").write_text(json.dumps(doc))
    (work / "data" / "images" / doc["images"][0]["file_name"]).write_bytes(b"")
    with pytest.raises(TaskFailed, match="'area'"):
        detr.read_coco(str(work / "noarea.json"), str(work / "data" / "images"))


# ---------------------------------------------------------------------------------------------
# training: checkpoints, resume, status.json, keys


def test_checkpoints_latest_link_and_resume(work, monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work))
    assert code == 0, out
    results = work / "results" / "train"
    names = sorted(p.name for p in results.iterdir())
    assert names == ["experiment.yaml", "model_epoch_000.pth", "model_epoch_001.pth",
                     "rtdetr_model_latest.pth", "status.json"]
    link = results / "rtdetr_model_latest.pth"
    assert link.is_symlink() and os.readlink(link) == "model_epoch_001.pth"
    first = status(results / "status.json")
    # Again with 5 epochs, a checkpoint every 2: resumes after epoch 1 on its own.
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work),
                    "train.num_epochs=5", "train.checkpoint_interval=2")
    assert code == 0, out
    assert f"Setting resume checkpoint to {results / 'model_epoch_001.pth'}" in out
    assert "Epoch 0:" not in out and "Epoch 2:" in out and "Epoch 4:" in out
    assert sorted(p.name for p in results.glob("model_epoch_*.pth")) == [
        "model_epoch_000.pth", "model_epoch_001.pth", "model_epoch_003.pth"]  # epoch 4: (4+1) % 2 != 0
    assert os.readlink(link) == "model_epoch_003.pth"
    assert not list(results.glob(".*partial"))
    lines = status(results / "status.json")[len(first):]
    assert [ln["epoch"] for ln in lines if ln["message"] == "Train metrics generated."] == [3, 4, 5]
    assert any(ln["message"].startswith("Resuming training from checkpoint") for ln in lines)
    # The numbers continue those of an uninterrupted run.
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work), "train.num_epochs=5",
                    f"train.results_dir={work / 'straight'}")
    straight = [ln["kpi"] for ln in status(work / "straight" / "status.json") if "kpi" in ln]
    resumed = [ln["kpi"] for ln in status(results / "status.json") if "kpi" in ln]
    assert straight == resumed


def test_explicit_resume_path(work, monkeypatch, capsys):
    run(monkeypatch, capsys, "pyt", "dino", "train", "-e", spec(work, "dino"))
    ckpt = work / "results" / "train" / "model_epoch_000.pth"
    code, out = run(monkeypatch, capsys, "pyt", "dino", "train", "-e", spec(work, "dino"), "train.num_epochs=3",
                    f"train.resume_training_checkpoint_path={ckpt}", f"train.results_dir={work / 'r2'}")
    assert code == 0 and "Epoch 1:" in out and "Epoch 0:" not in out
    assert sorted(p.name for p in (work / "r2").glob("*.pth")) == [
        "dino_model_latest.pth", "model_epoch_001.pth", "model_epoch_002.pth"]
    code, out = run(monkeypatch, capsys, "pyt", "dino", "train", "-e", spec(work, "dino"),
                    f"train.resume_training_checkpoint_path={work / 'data' / 'annotations.json'}")
    assert code == 1 and "it must be either a .tlt or a .pth" in out
    code, out = run(monkeypatch, capsys, "pyt", "dino", "train", "-e", spec(work, "dino"),
                    f"train.resume_training_checkpoint_path={work / 'gone.pth'}")
    assert code == 1 and "No such file or directory" in out


def test_status_json_lines(work, monkeypatch, capsys):
    code, _ = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work, epochs=4),
                  "train.validation_interval=2")
    assert code == 0
    lines = status(work / "results" / "train" / "status.json")
    for ln in lines:
        assert {"date", "time", "status", "verbosity", "message"} <= set(ln)
        month, day, year = ln["date"].split("/")
        assert len(year) == 4 and 1 <= int(month) <= 12 and 1 <= int(day) <= 31
        assert len(ln["time"].split(":")) == 3
    assert lines[0]["status"] == "STARTED" and lines[-1]["status"] == "SUCCESS"
    train = [ln for ln in lines if ln["message"] == "Train metrics generated."]
    val = [ln for ln in lines if ln["message"] == "Eval metrics generated."]
    assert [ln["epoch"] for ln in train] == [1, 2, 3, 4] and {ln["max_epoch"] for ln in train} == {4}
    assert all(set(ln["kpi"]) == {"train_loss"} and isinstance(ln["kpi"]["train_loss"], float) for ln in train)
    assert [ln["epoch"] for ln in val] == [2, 4]
    for ln in val:
        assert set(ln["kpi"]) == {"val_mAP", "val_mAP50", "val_loss"}
        assert isinstance(ln["kpi"]["val_mAP"], str) and isinstance(ln["kpi"]["val_loss"], float)
    assert float(val[1]["kpi"]["val_mAP"]) > float(val[0]["kpi"]["val_mAP"])  # improves
    assert train[-1]["kpi"]["train_loss"] < train[0]["kpi"]["train_loss"]


def test_a_key_is_optional_but_an_encrypted_checkpoint_needs_its_own(work, monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work, key=None))
    assert code == 0, out  # no key: plain checkpoints
    plain = str(work / "results" / "train" / "rtdetr_model_latest.pth")
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "evaluate", "-e", spec(work, key=None),
                    f"evaluate.checkpoint={plain}")
    assert code == 0, out
    shutil.rmtree(work / "results")
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "train", "-e", spec(work, key=None), f"encryption_key={KEY}")
    assert code == 0, out
    ckpt = str(work / "results" / "train" / "rtdetr_model_latest.pth")
    code, out = run(monkeypatch, capsys, "pyt", "rtdetr", "evaluate", "-e", spec(work),
                    f"evaluate.checkpoint={ckpt}", "encryption_key=another")
    assert code == 1 and "encryption_key is not the one it was saved with" in out
    for task in ("evaluate", "inference", "export"):
        code, out = run(monkeypatch, capsys, "pyt", "rtdetr", task, "-e", spec(work, key=None),
                        f"{task}.checkpoint={ckpt}", f"export.onnx_file={work / 'm.onnx'}")
        assert code == 1 and "Cannot access model state dict without the encryption key" in out, task
    code, out = run(monkeypatch, capsys, "pyt", "dino", "evaluate", "-e", spec(work, "dino"),
                    f"evaluate.checkpoint={ckpt}")
    assert code == 1 and "is a rtdetr checkpoint, not dino" in out


def test_interrupted_write_leaves_no_checkpoint(work, monkeypatch):
    path = work / "model_epoch_000.pth"

    class Boom(BaseException):
        pass

    def explode(*_a, **_k):
        raise Boom()

    monkeypatch.setattr(detr.os, "replace", explode)
    with pytest.raises(Boom):
        detr.save_pth(str(path), {"tao_model": "rtdetr"})
    assert list(work.glob("*.pth")) == [] and list(work.glob(".*")) == []


# ---------------------------------------------------------------------------------------------
# evaluate, inference, export, TensorRT


def test_pipeline_in_process(work, monkeypatch, capsys):
    s = spec(work, "dino")
    assert run(monkeypatch, capsys, "pyt", "dino", "train", "-e", s)[0] == 0
    ckpt = str(work / "results" / "train" / "dino_model_latest.pth")
    code, out = run(monkeypatch, capsys, "pyt", "dino", "evaluate", "-e", s, f"evaluate.checkpoint={ckpt}")
    assert code == 0
    test = status(work / "results" / "evaluate" / "status.json")
    kpi = next(ln["kpi"] for ln in test if "kpi" in ln)
    assert set(kpi) == {"test_mAP", "test_mAP50"} and f"test_mAP: {kpi['test_mAP']}" in out
    last_val = [ln for ln in status(work / "results" / "train" / "status.json") if "kpi" in ln][-1]["kpi"]
    assert kpi["test_mAP"] == last_val["val_mAP"]  # same data, same model state
    code, out = run(monkeypatch, capsys, "pyt", "dino", "inference", "-e", s, f"inference.checkpoint={ckpt}")
    assert code == 0
    inf = work / "results" / "inference"
    assert sorted(p.name for p in (inf / "images_annotated").iterdir()) == [f"{i:06d}.png" for i in range(4)]
    assert sorted(p.name for p in (inf / "labels").iterdir()) == [f"{i:06d}.txt" for i in range(4)]
    onnx = str(work / "export" / "dino.onnx")
    assert run(monkeypatch, capsys, "pyt", "dino", "export", "-e", s, f"export.checkpoint={ckpt}",
               f"export.onnx_file={onnx}")[0] == 0
    code, out = run(monkeypatch, capsys, "pyt", "dino", "export", "-e", s, f"export.checkpoint={ckpt}",
                    f"export.onnx_file={onnx}")
    assert code == 1 and "already exists" in out
    engine = str(work / "export" / "dino.engine")
    code, out = run(monkeypatch, capsys, "deploy", "dino", "gen_trt_engine", "-e", s,
                    f"gen_trt_engine.onnx_file={onnx}", f"gen_trt_engine.trt_engine={engine}")
    assert code == 0 and os.path.isfile(engine)
    code, out = run(monkeypatch, capsys, "deploy", "dino", "evaluate", "-e", s, f"evaluate.trt_engine={engine}")
    assert code == 0
    results = json.loads((work / "results" / "trt_evaluate" / "results.json").read_text())
    assert results["AP"] == float(kpi["test_mAP"])  # an FP32 engine keeps the model's numbers
    assert f"AP50: {results['AP50']:.9f}" in out
    # TAO Deploy writes the metrics to results.json only, none into status.json
    assert all("kpi" not in ln for ln in status(work / "results" / "trt_evaluate" / "status.json"))
    code, out = run(monkeypatch, capsys, "deploy", "dino", "inference", "-e", s, f"inference.trt_engine={engine}")
    assert code == 0 and len(list((work / "results" / "trt_inference" / "labels").iterdir())) == 4


def test_gen_trt_engine_refuses_what_is_not_an_onnx_model(work, monkeypatch, capsys):
    s = spec(work)
    (work / "fake.onnx").write_text("not a model")
    code, out = run(monkeypatch, capsys, "deploy", "rtdetr", "gen_trt_engine", "-e", s,
                    f"gen_trt_engine.onnx_file={work / 'fake.onnx'}", f"gen_trt_engine.trt_engine={work / 'e'}")
    assert code == 1 and "not an ONNX model" in out and not (work / "e").exists()
    code, out = run(monkeypatch, capsys, "deploy", "rtdetr", "gen_trt_engine", "-e", s,
                    f"gen_trt_engine.onnx_file={s}", f"gen_trt_engine.trt_engine={work / 'e'}")
    assert code == 1 and "accepts either .onnx, .uff or .etlt" in out


def test_engines_are_tied_to_the_tensorrt_of_their_image(work, monkeypatch, capsys):
    from tao_emulator import modelio  # noqa: PLC0415

    engine = work / "old.engine"
    modelio.save_engine(str(engine), {"network": "rtdetr", "trt_version": "8.6.1", "skill": 0.5,
                                      "fingerprint": "0" * 24})
    code, out = run(monkeypatch, capsys, "deploy", "rtdetr", "evaluate", "-e", spec(work),
                    f"evaluate.trt_engine={engine}")
    assert code == 1 and "expecting library version 10.8.0 got 8.6.1" in out
