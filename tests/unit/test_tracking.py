"""Experiment tracking: the events wrapper with a fake tracker, the MLflow backend on a local file
store, the ClearML backend against a fake clearml module, and the messages when a library is missing."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from tlt_pipe.cli import main
from tlt_pipe.config import TrackingConfig, load_config
from tlt_pipe.errors import ConfigError, Interrupted, StageFailed
from tlt_pipe.manifest import Manifest, StageRecord, save_manifest
from tlt_pipe.tracking import (ClearmlTracker, TrackingEvents, epoch_series, flatten_params, make_trackers,
                               stage_metrics)

KEY = "tlt-Tr4cking-s3cret-key"
CSV = """\
epoch,AP_lpd,loss,lr,mAP,validation_loss
1,nan,3.5,0.001,nan,nan
2,0.41,2.9,0.002,0.41,3.1
3,nan,2.4,0.002,nan,nan
4,0.58,2.1,0.0005,0.58,2.6
"""


class FakeTracker:
    name = "fake"
    where = "run 1 in experiment lpd"

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple] = []
        self.fail_on = fail_on

    def _record(self, *call):
        self.calls.append(call)
        if call[0] == self.fail_on:
            raise RuntimeError(f"{call[0]} broke")

    def start(self, config, run_dir):
        self._record("start", config.name, run_dir)

    def log_params(self, params):
        self._record("log_params", dict(params))

    def log_metrics(self, series):
        self._record("log_metrics", [(step, dict(m)) for step, m in series])

    def log_artifact(self, path, folder=None):
        self._record("log_artifact", Path(path), folder)

    def finish(self, status, reason=None):
        self._record("finish", status, reason)

    def of(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]

    def metrics(self) -> dict[str, list[tuple[int | None, float]]]:
        out: dict[str, list] = {}
        for _, series in self.of("log_metrics"):
            for step, values in series:
                for key, value in values.items():
                    out.setdefault(key, []).append((step, value))
        return out


class Recorder:
    """An inner events object that records every call exactly as it got it."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


TRACKED = """\
tracking:
  mlflow: {experiment: lpd}
runner: {gpus: 0, env: {HTTP_PROXY: "http://user:pw@proxy"}}
spec_overrides: {train: {dataset_config.target_class_mapping: {note: "key %s"}}}
""" % KEY


@pytest.fixture
def config(write_config):
    text = write_config().read_text().replace("runner: {gpus: 0}\n", "")
    path = write_config().parent / "tracked.yaml"
    path.write_text(text + TRACKED)
    return load_config(path)


def with_tracking(config, **tracking):
    return config.model_copy(update={"tracking": TrackingConfig.model_validate(tracking)})


def training_record(run_dir: Path, stage: str = "train") -> StageRecord:
    csv = run_dir / stage / "ssd_training_log_resnet18.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text(CSV)
    return StageRecord(status="succeeded", outputs=[{"path": str(csv), "kind": "file"}],
                       metrics={"epochs": 4, "best_epoch": 4, "selected_by": "best mAP", "mAP": 0.58,
                                "ap": {"lpd": 0.58}, "loss": 2.1, "checkpoints": 4},
                       artifacts={"model": f"{stage}/weights/ssd_resnet18_epoch_004.hdf5", "epoch": 4})


def step(name: str):
    return SimpleNamespace(name=name, reason="has not run yet", plan=SimpleNamespace(image="tao"), argv=["ssd"])


def test_every_event_reaches_the_inner_events_unchanged(config, tmp_path):
    inner, tracker = Recorder(), FakeTracker()
    events = TrackingEvents(inner, [tracker], config, tmp_path)
    record = StageRecord(status="failed", error="boom")
    steps = [step("prepare")]
    with events:
        events.plan(tmp_path, steps)
        events.stage_started(steps[0], tmp_path / "logs" / "prepare.log")
        events.line("prepare", "a line")
        events.progress("prepare", "3/9 [===>...]")
        events.stage_finished("prepare", record)
    calls = [c for c in inner.calls if c[1] != "tracking"]
    assert calls == [("plan", tmp_path, steps), ("stage_started", steps[0], tmp_path / "logs" / "prepare.log"),
                     ("line", "prepare", "a line"), ("progress", "prepare", "3/9 [===>...]"),
                     ("stage_finished", "prepare", record)]
    assert calls[-1][2] is record
    assert inner.calls[0] == ("line", "tracking", "tracking.fake: run 1 in experiment lpd")
    assert tracker.of("log_metrics") == []  # a failed stage logs no metrics
    assert tracker.of("finish") == [("finish", "FINISHED", None)]


def test_params_are_the_flattened_resolved_config_without_the_key(config, tmp_path):
    tracker = FakeTracker()
    with TrackingEvents(Recorder(), [tracker], config, tmp_path, secrets=[KEY]) as events:
        events.plan(tmp_path, [])
    [(_, params)] = tracker.of("log_params")
    assert params["train.epochs"] == "4" and params["retrain.epochs"] == "3"
    assert params["model.arch"] == "resnet" and params["model.freeze_blocks"] == "[0, 1]"
    assert params["dataset.classes.plate"] == "lpd" and params["network"] == "ssd"
    assert params["dataset.path"] == str(tmp_path / "data")
    assert params["runner.env.HTTP_PROXY"] == "***"  # env values are never sent
    assert params["spec_overrides.train.dataset_config.target_class_mapping.note"] == "key ***"
    assert not any(k.startswith("tracking") for k in params)
    assert KEY not in json.dumps(tracker.calls, default=str)
    assert flatten_params(config, [KEY]) == params


def test_per_epoch_series_from_the_training_csv_and_stage_metrics(config, tmp_path):
    tracker = FakeTracker()
    with TrackingEvents(Recorder(), [tracker], config, tmp_path) as events:
        events.stage_finished("train", training_record(tmp_path))
        events.stage_finished("evaluate", StageRecord(status="succeeded", metrics={"mAP": 0.61, "ap": {"lpd": 0.61}}))
        events.stage_finished("prune", StageRecord(status="succeeded", metrics={"pruning_ratio": 0.42}))
        events.stage_finished("retrain", training_record(tmp_path, "retrain"))
    metrics = tracker.metrics()
    assert metrics["train/loss"] == [(1, 3.5), (2, 2.9), (3, 2.4), (4, 2.1)]
    assert metrics["train/lr"] == [(1, 0.001), (2, 0.002), (3, 0.002), (4, 0.0005)]
    assert metrics["train/mAP"] == [(2, 0.41), (4, 0.58)]  # epochs without validation have none
    assert metrics["train/validation_loss"] == [(2, 3.1), (4, 2.6)]
    assert metrics["train/AP/lpd"] == [(2, 0.41), (4, 0.58)]
    assert metrics["train/best_mAP"] == [(None, 0.58)] and metrics["train/best_epoch"] == [(None, 4)]
    assert metrics["train/last_loss"] == [(None, 2.1)] and metrics["train/best_AP/lpd"] == [(None, 0.58)]
    assert "train/selected_by" not in metrics
    assert metrics["evaluate/mAP"] == [(None, 0.61)] and metrics["evaluate/AP/lpd"] == [(None, 0.61)]
    assert metrics["prune/pruning_ratio"] == [(None, 0.42)]
    assert [s for s, _ in metrics["retrain/loss"]] == [1, 2, 3, 4]


def test_pure_helpers():
    assert stage_metrics("engine", {"engine": "engine/ssd.fp32.engine", "engine_bytes": 123, "ok": True,
                                    "nan": float("nan")}) == {"engine/engine_bytes": 123.0}
    assert stage_metrics("evaluate", {"ap": {"li cense+plate": 0.5}}) == {"evaluate/AP/li cense_plate": 0.5}
    assert epoch_series("train", []) == []


def test_a_skipped_stage_logs_what_the_manifest_recorded(config, tmp_path):
    manifest = Manifest(tltpipe="0", name="lpd", network="ssd", toolkit="5.0")
    manifest.stages["train"] = training_record(tmp_path)
    manifest.stages["prune"] = StageRecord(status="failed")
    save_manifest(tmp_path, manifest)
    tracker = FakeTracker()
    with TrackingEvents(Recorder(), [tracker], config, tmp_path) as events:
        events.plan(tmp_path, [])
        events.stage_skipped(step("train"))
        events.stage_skipped(step("prune"))
    assert len(tracker.metrics()["train/loss"]) == 4
    assert not any(k.startswith("prune/") for k in tracker.metrics())


def test_final_artifacts_and_status(config, tmp_path):
    for rel in ("export/ssd.onnx", "export/labels.txt", "export/nvinfer_config.txt", "engine/ssd.fp32.engine"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    manifest = Manifest(tltpipe="0", name="lpd", network="ssd", toolkit="5.0")
    manifest.stages["export"] = StageRecord(status="succeeded", artifacts={
        "model": "export/ssd.onnx", "labels": "export/labels.txt", "nvinfer_config": "export/nvinfer_config.txt"})
    manifest.stages["engine"] = StageRecord(status="succeeded", artifacts={"engine": "engine/ssd.fp32.engine"})
    save_manifest(tmp_path, manifest)
    tracker = FakeTracker()
    with TrackingEvents(Recorder(), [tracker], config, tmp_path):
        pass
    assert [(p.relative_to(tmp_path).as_posix(), f) for _, p, f in tracker.of("log_artifact")] == [
        ("export/ssd.onnx", "export"), ("export/labels.txt", "export"), ("export/nvinfer_config.txt", "export"),
        ("engine/ssd.fp32.engine", "engine"), ("manifest.json", None)]
    assert tracker.calls[-1] == ("finish", "FINISHED", None)

    for exc, status in ((StageFailed("stage train failed with exit code 1"), "FAILED"),
                        (Interrupted("interrupted during train"), "KILLED")):
        tracker = FakeTracker()
        with pytest.raises(type(exc)):
            with TrackingEvents(Recorder(), [tracker], config, tmp_path):
                raise exc
        assert tracker.calls[-1] == ("finish", status, str(exc))


def test_a_failing_tracker_is_reported_once_and_the_run_goes_on(config, tmp_path):
    inner, broken, good = Recorder(), FakeTracker(fail_on="log_metrics"), FakeTracker()
    broken.name = "broken"
    with TrackingEvents(inner, [broken, good], config, tmp_path) as events:
        events.stage_finished("evaluate", StageRecord(status="succeeded", metrics={"mAP": 0.5}))
        events.stage_finished("prune", StageRecord(status="succeeded", metrics={"pruning_ratio": 0.5}))
    warnings = [c for c in inner.calls if c[:2] == ("line", "tracking") and "broken" in c[2] and "could not" in c[2]]
    assert len(warnings) == 1 and "log_metrics broke" in warnings[0][2]
    assert len(broken.of("log_metrics")) == 1 and broken.of("finish") == [("finish", "FAILED", "tltpipe could not "
                                                                                               "log the evaluate metrics")]
    assert len(good.of("log_metrics")) == 2 and good.calls[-1] == ("finish", "FINISHED", None)


def test_a_tracker_that_cannot_start_stops_the_command(config, tmp_path):
    with pytest.raises(ConfigError, match=r"^tracking.fake: cannot start a run: start broke$"):
        with TrackingEvents(Recorder(), [FakeTracker(fail_on="start")], config, tmp_path):
            pytest.fail("the block must not run")


def test_tracking_config_keys(write_config):
    path = write_config(extra="tracking:\n  mlflow: {}\n  clearml: {project: plates}\n")
    tracking = load_config(path).tracking
    assert tracking.mlflow is not None and tracking.mlflow.tracking_uri is None
    assert tracking.clearml.project == "plates"
    assert load_config(write_config()).tracking.mlflow is None
    with pytest.raises(ConfigError, match=r"lpd.yaml:13: tracking.mlflow.uri: unknown key"):
        load_config(write_config(extra="tracking:\n  mlflow: {uri: x}\n"))


def test_missing_libraries_are_one_line_exit_2_before_any_stage(write_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    monkeypatch.setitem(sys.modules, "clearml", None)
    config = write_config(extra="tracking: {mlflow: {experiment: lpd}}\n")
    with pytest.raises(ConfigError) as caught:
        make_trackers(load_config(config))
    assert str(caught.value) == "tracking.mlflow needs MLflow: pip install 'tltpipe[mlflow]'"

    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--run-dir", str(run_dir)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines == ["tltpipe: error: tracking.mlflow needs MLflow: pip install 'tltpipe[mlflow]'"]
    assert not run_dir.exists()
    dry = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--run-dir", str(run_dir), "--dry-run"])
    assert dry.exit_code == 0, dry.output  # a dry run tracks nothing, so it needs no library
    with pytest.raises(ConfigError, match=r"^tracking.clearml needs ClearML: pip install 'tltpipe\[clearml\]'$"):
        make_trackers(load_config(write_config(extra="tracking: {clearml: {}}\n")))


# --- MLflow on a local file store ----------------------------------------------------------------

def test_mlflow_backend_on_a_file_store(config, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'tltpipe[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it to use a file store
    uri = (tmp_path / "mlruns").as_uri()
    config = with_tracking(config, mlflow={"tracking_uri": uri, "experiment": "lpd"})
    run_dir = tmp_path / "runs" / "lpd"
    (run_dir / "export").mkdir(parents=True)
    (run_dir / "export" / "labels.txt").write_text("lpd\n")
    manifest = Manifest(tltpipe="0", name="lpd", network="ssd", toolkit="5.0")
    manifest.stages["export"] = StageRecord(status="succeeded", artifacts={"labels": "export/labels.txt"})
    save_manifest(run_dir, manifest)
    [tracker] = make_trackers(config)
    with TrackingEvents(Recorder(), [tracker], config, run_dir, secrets=[KEY]) as events:
        events.plan(run_dir, [])
        events.stage_finished("train", training_record(run_dir))
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("lpd").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "lpd"
    assert run.data.params["train.epochs"] == "4" and run.data.tags["tltpipe.network"] == "ssd"
    history = client.get_metric_history(run.info.run_id, "train/mAP")
    assert [(m.step, m.value) for m in history] == [(2, 0.41), (4, 0.58)]
    assert run.data.metrics["train/best_mAP"] == 0.58
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"export", "manifest.json"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "export")] == ["export/labels.txt"]
    assert KEY not in json.dumps(run.data.params)


# --- ClearML against a fake module (no server) ----------------------------------------------------

class FakeTask:
    made: list["FakeTask"] = []

    def __init__(self, **kwargs):
        self.init_args, self.id, self.log = kwargs, "t123", []
        self.logger = SimpleNamespace(
            report_scalar=lambda **kw: self.log.append(("scalar", kw)),
            report_single_value=lambda name, value: self.log.append(("single", name, value)))

    @classmethod
    def init(cls, **kwargs):
        task = cls(**kwargs)
        cls.made.append(task)
        return task

    def __getattr__(self, name):  # add_tags, set_user_properties, connect, upload_artifact, flush, close, mark_*
        return lambda *args, **kwargs: self.log.append((name, args, kwargs))

    def get_logger(self):
        return self.logger


def test_clearml_backend_with_a_fake_module(config, tmp_path, monkeypatch):
    FakeTask.made = []
    monkeypatch.setitem(sys.modules, "clearml", types.SimpleNamespace(Task=FakeTask))
    config = with_tracking(config, clearml={"project": "plates"})
    [tracker] = make_trackers(config)
    assert isinstance(tracker, ClearmlTracker)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(StageFailed):
        with TrackingEvents(Recorder(), [tracker], config, tmp_path) as events:
            events.plan(tmp_path, [])
            events.stage_finished("train", training_record(tmp_path))
            raise StageFailed("stage prune failed with exit code 1")
    [task] = FakeTask.made
    assert task.init_args["project_name"] == "plates" and task.init_args["task_name"] == tmp_path.name
    assert task.init_args["auto_connect_frameworks"] is False and task.init_args["reuse_last_task_id"] is False
    names = [entry[0] for entry in task.log]
    connect = next(e for e in task.log if e[0] == "connect")
    assert connect[1][0]["train.epochs"] == "4" and connect[2] == {"name": "tltpipe"}
    assert ("scalar", {"title": "mAP", "series": "train", "value": 0.58, "iteration": 4}) in task.log
    assert ("single", "train/best_mAP", 0.58) in task.log
    upload = next(e for e in task.log if e[0] == "upload_artifact")
    assert upload[2]["name"] == "manifest.json" and upload[2]["artifact_object"] == tmp_path / "manifest.json"
    assert names[-3:] == ["flush", "close", "mark_failed"]
    assert task.log[-1][2] == {"status_reason": "stage prune failed with exit code 1", "force": True}
