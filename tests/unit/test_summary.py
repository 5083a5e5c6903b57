from __future__ import annotations

from click.testing import CliRunner

from tlt_pipe.cli import main
from tlt_pipe.manifest import Manifest, StageRecord, save_manifest
from tlt_pipe.summary import ap_table, stage_rows, summary_json


def _manifest() -> Manifest:
    m = Manifest(tltpipe="0.1.0", name="lpd", network="ssd", toolkit="5.0")
    m.stages["train"] = StageRecord(status="succeeded", duration_s=12.5, metrics={"mAP": 0.61},
                                    artifacts={"model": "train/weights/ssd_resnet18_epoch_004.hdf5"})
    m.stages["evaluate"] = StageRecord(status="succeeded", metrics={"mAP": 0.6, "ap": {"lpd": 0.6, "car": 0.5}})
    m.stages["prune"] = StageRecord(status="succeeded", metrics={"pruning_ratio": 0.42})
    m.stages["evaluate_retrain"] = StageRecord(status="succeeded", metrics={"mAP": 0.7, "ap": {"lpd": 0.7}})
    m.stages["export"] = StageRecord(status="failed", error="stage export failed with exit code 255")
    m.stages["deepstream"] = StageRecord(status="succeeded", metrics={"output_blobs": "NMS", "network_mode": "fp32"},
                                         artifacts={"app_config": "deepstream/deepstream_app.txt"})
    return m


def test_stage_rows_pick_the_key_metric_and_output():
    rows = {r.stage: r for r in stage_rows(_manifest())}
    assert rows["train"].key_metric == "mAP 0.6100"
    assert rows["train"].output == "train/weights/ssd_resnet18_epoch_004.hdf5"
    assert rows["prune"].key_metric == "pruning ratio 0.4200"
    assert rows["export"].status == "failed" and "exit code 255" in rows["export"].reason
    assert (rows["deepstream"].key_metric, rows["deepstream"].output) == ("outputs NMS", "deepstream/deepstream_app.txt")


def test_ap_table_lines_up_classes_across_evaluations():
    stages, rows = ap_table(_manifest())
    assert stages == ["evaluate", "evaluate_retrain"]
    assert rows == [("car", [0.5, None]), ("lpd", [0.6, 0.7]), ("mAP", [0.6, 0.7])]
    assert summary_json(_manifest())["ap"]["evaluate_retrain"] == {"car": None, "lpd": 0.7, "mAP": 0.7}


def test_show_prints_tables_and_json(tmp_path):
    save_manifest(tmp_path, _manifest())
    result = CliRunner().invoke(main, ["show", str(tmp_path)], env={"NO_COLOR": "1", "COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "pruning ratio 0.4200" in result.output and "average precision" in result.output
    result = CliRunner().invoke(main, ["show", str(tmp_path), "--json"])
    assert '"network": "ssd"' in result.output
    missing = CliRunner().invoke(main, ["show", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no manifest.json" in missing.output


def _with_engine(drop: float, warnings=()) -> Manifest:
    m = _manifest()
    m.stages["evaluate_engine"] = StageRecord(
        status="succeeded", warnings=list(warnings),
        metrics={"mAP": round(0.7 - drop, 6), "ap": {"lpd": round(0.7 - drop, 6)}, "model_mAP": 0.7, "mAP_drop": drop,
                 "precision": "int8", "ran_on": {"gpu": "NVIDIA L4", "compute_capability": "8.9", "tensorrt": "8.6.1"}})
    return m


def test_show_puts_the_engine_map_beside_the_models_with_the_drop(tmp_path):
    save_manifest(tmp_path, _with_engine(0.021, ["the engine runs on a different machine than it was built on"]))
    result = CliRunner().invoke(main, ["show", str(tmp_path)], env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "INT8 engine: mAP 0.6790 against the model's 0.7000: drop 0.0210 (3.0% of it) on NVIDIA L4, TensorRT 8.6.1" \
        in result.output
    assert "warning the engine runs on a different machine" in result.output
    stages, rows = ap_table(_with_engine(0.021))
    assert stages == ["evaluate", "evaluate_retrain", "evaluate_engine"] and rows[-1] == ("mAP", [0.6, 0.7, 0.679])
    save_manifest(tmp_path, _with_engine(0.0))
    same = CliRunner().invoke(main, ["show", str(tmp_path)], env={"NO_COLOR": "1", "COLUMNS": "200"}).output
    assert "INT8 engine: mAP 0.7000 against the model's 0.7000: no drop on NVIDIA L4" in same
    engine = summary_json(_with_engine(0.0))["engine"]
    assert engine["drop"] == 0.0 and engine["precision"] == "int8" and engine["model_map"] == 0.7
    assert summary_json(_manifest())["engine"] is None  # no engine evaluated
