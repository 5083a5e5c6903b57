"""The real CLI on the emulator with MLflow tracking to a local file store, read back with MLflow's client."""

from __future__ import annotations

import json

import pytest
from tltpipe_cli import KEY, manifest, tltpipe, write_config

pytestmark = pytest.mark.docker


def test_a_tracked_run_lands_in_the_mlflow_file_store(emulator_images, sample, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'tltpipe[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it to use a file store
    uri = (tmp_path / "mlruns").as_uri()
    config = write_config(sample, emulator_images, "5.0", filename="tracked.yaml",
                          extra=f"tracking: {{mlflow: {{tracking_uri: '{uri}', experiment: lpd}}}}\n")
    run_dir = tmp_path / "runs" / "lpd"
    result = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(run_dir),
                     "--set", "train.validation_period=1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "tracking.mlflow: run " in result.stdout and "in experiment lpd" in result.stdout

    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("lpd").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "lpd"
    record = manifest(run_dir)["stages"]
    epochs = record["train"]["metrics"]["epochs"]
    assert epochs == 6
    history = client.get_metric_history(run.info.run_id, "train/mAP")
    assert [m.step for m in history] == list(range(1, epochs + 1))  # one mAP per epoch
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == epochs
    assert len(client.get_metric_history(run.info.run_id, "retrain/loss")) == 4
    assert run.data.metrics["evaluate/mAP"] == pytest.approx(record["evaluate"]["metrics"]["mAP"])
    assert run.data.metrics["prune/pruning_ratio"] == pytest.approx(record["prune"]["metrics"]["pruning_ratio"])
    assert run.data.params["train.epochs"] == "6" and run.data.params["network"] == "ssd"

    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "export", "engine"} <= top
    engine = record["engine"]["artifacts"]["engine"]
    assert engine in {a.path for a in client.list_artifacts(run.info.run_id, "engine")}
    exported = {a.path for a in client.list_artifacts(run.info.run_id, "export")}
    assert {"export/ssd.onnx", "export/labels.txt", "export/nvinfer_config.txt"} <= exported

    logged = json.dumps({"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics})
    assert KEY not in logged
    for path in (tmp_path / "mlruns").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the key leaked into {path}"
