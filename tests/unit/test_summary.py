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
