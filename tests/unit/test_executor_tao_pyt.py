"""rtdetr and dino through the executor with the fake runner (the emulator's PyTorch and Deploy images in
process): a whole run, a re-run that skips every stage, the key never left in any file, a failed training
resumed from its newest complete checkpoint, and a sweep over a key of the experiment spec."""

from __future__ import annotations

import pytest
import yaml

import tlt_pipe
from tlt_pipe.datasets.sample import sample_crpd
from tlt_pipe.errors import ConfigError, SpecError, StageFailed

from fake_runner import KEY, FakeRunner

pytestmark = pytest.mark.usefixtures("emulated_tao")


def _config(tmp_path, network: str):
    sample_crpd(tmp_path / "crpd", 12, 0)
    path = tmp_path / "r.yaml"
    path.write_text(f"network: {network}\nname: r\n"
                    "dataset: {format: crpd, path: crpd, classes: {lpd: lpd}, val_split: 25}\n"
                    "train: {epochs: 5, batch_size: 2, checkpoint_interval: 1, validation_period: 1}\n"
                    "engine: {data_type: fp16, max_batch_size: 2}\nrunner: {kind: local, gpus: 0}\n", encoding="utf-8")
    return tlt_pipe.load_config(path)


@pytest.mark.parametrize("network", ["rtdetr", "dino"])
def test_a_whole_run_then_every_stage_skipped_and_no_key_left_anywhere(tmp_path, network):
    config, runner = _config(tmp_path, network), FakeRunner()
    manifest = tlt_pipe.run(config, run_dir=tmp_path / "run", runner=runner, key=KEY)
    assert runner.ran == ["train", "evaluate", "export", "engine", "evaluate_engine", "inference", "inference_engine"]
    stages = manifest.stages
    assert all(r.status == "succeeded" for r in stages.values()), {n: r.error for n, r in stages.items()}
    train = stages["train"].metrics
    best = max((e for e in train["epochs"] if "val_mAP50" in e), key=lambda e: (e["val_mAP50"], e["epoch"]))
    assert train["best_epoch"] == best["epoch"] and stages["train"].artifacts["model"] == best["checkpoint"]
    assert 0 < stages["evaluate"].metrics["mAP"] <= 1 and 0 < stages["evaluate_engine"].metrics["mAP"] <= 1
    assert stages["inference"].metrics["images"] == stages["inference_engine"].metrics["images"] > 0
    built, measured = stages["engine"].metrics["provenance"], stages["evaluate_engine"].metrics
    assert built["gpu"] == "fake GPU" and built["tensorrt"] and built["precision"] == "fp16"
    assert measured["model_mAP"] == stages["evaluate"].metrics["mAP"]
    assert measured["mAP_drop"] == round(measured["model_mAP"] - measured["mAP"], 6)
    assert measured["ran_on"] == {k: built[k] for k in measured["ran_on"]} and not stages["evaluate_engine"].warnings
    leaked = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []
    runner.ran.clear()
    tlt_pipe.run(config, run_dir=tmp_path / "run", runner=runner, key=KEY)
    assert runner.ran == []


def test_a_failed_training_resumes_from_its_newest_complete_checkpoint(tmp_path, monkeypatch):
    config, runner = _config(tmp_path, "rtdetr"), FakeRunner()
    monkeypatch.setenv("TAO_EMU_FAIL_AT_EPOCH", "3")  # epochs 0..2 written (tltpipe's 1..3)
    with pytest.raises(StageFailed, match="stage train failed"):
        tlt_pipe.run(config, run_dir=tmp_path / "run", runner=runner, key=KEY, stages=(None, "train"))
    train = tmp_path / "run" / "train"
    assert sorted(p.name for p in train.glob("model_epoch_*.pth")) == [f"model_epoch_{e:03d}.pth" for e in range(3)]
    written = (train / "experiment.yaml").read_text(encoding="utf-8")  # the task's resolved config
    assert "encryption_key" in written and KEY not in written  # taken out though the stage failed
    monkeypatch.delenv("TAO_EMU_FAIL_AT_EPOCH")
    manifest = tlt_pipe.run(config, run_dir=tmp_path / "run", runner=runner, key=KEY, stages=(None, "train"), resume=True)
    record = manifest.stages["train"]
    assert record.status == "succeeded" and record.resumed_from["epoch"] == 3
    assert record.resumed_from["checkpoint"] == "train/model_epoch_002.pth"
    assert [e["epoch"] for e in record.metrics["epochs"]] == [1, 2, 3, 4, 5]


def test_a_sweep_over_a_key_of_the_experiment_spec(tmp_path):
    """train.optim.lr is no config key: for rtdetr it is the spec's, set through spec_overrides."""
    config, runner = _config(tmp_path, "rtdetr"), FakeRunner()
    result = tlt_pipe.sweep(config, {"train.optim.lr": [1e-4, 5e-4], "train.epochs": [3]},
                            sweep_dir=tmp_path / "sweep", runner=runner, key=KEY)
    assert [r.status for r in result.rows] == ["succeeded", "succeeded"]
    assert result.shared == ["prepare"] and runner.ran.count("train") == 2
    specs = sorted((tmp_path / "sweep" / "points").glob("*/specs/train.yaml"))
    lrs = sorted(yaml.safe_load(p.read_text(encoding="utf-8"))["train"]["optim"]["lr"] for p in specs)
    assert lrs == [1e-4, 5e-4]
    assert all(yaml.safe_load(p.read_text(encoding="utf-8"))["train"]["num_epochs"] == 3 for p in specs)
    assert len({r.mAP for r in result.rows}) == 2  # the learning rate changed what was trained
    with pytest.raises((ConfigError, SpecError), match="train.optim.lrr"):
        tlt_pipe.sweep(config, {"train.optim.lrr": [1e-4]}, sweep_dir=tmp_path / "typo", runner=runner, key=KEY)


def test_a_tuning_study_over_a_key_of_the_experiment_spec(tmp_path):
    """The trials' validation mAP (the console's `Validation mAP50 : x`) reaches the pruner; the best
    trial's config sets the spec key through spec_overrides and runs as it is."""
    from tlt_pipe.api import Quiet
    from tlt_pipe.config import with_values
    from tlt_pipe.tune import run_tune

    space = {"train.optim.lr": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True}}
    config = with_values(_config(tmp_path, "rtdetr"), {"tune": {"space": space, "startup_trials": 1, "seed": 5}},
                         source="test")
    runner = FakeRunner()
    result = run_tune(config, tune_dir=tmp_path / "tune", key=KEY, events=Quiet(), runner_factory=lambda c: runner,
                      trials=6)
    states = [t["state"] for t in result.trials]
    assert len(states) == 6 and {"complete", "pruned"} <= set(states) and runner.ran.count("train") == 6, result.trials
    best = tlt_pipe.load_config(result.files["best"])
    assert best.spec_overrides["experiment"]["train.optim.lr"] == pytest.approx(result.best["params"]["train.optim.lr"])
    assert not best.tune.space
