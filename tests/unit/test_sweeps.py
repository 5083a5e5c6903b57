"""Sweeps: the points, what they share, the table and the recommendation (pure), and a whole prune sweep
with the fake runner (fake_runner.py): train runs once, each point prunes, retrains and evaluates."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import tlt_pipe
from tlt_pipe.api import Quiet
from tlt_pipe.config import with_values
from tlt_pipe.errors import ConfigError, Interrupted
from tlt_pipe.manifest import load_manifest
from tlt_pipe.sweeps import Row, parse_axes, points, recommend, run_sweep, table_csv

from fake_runner import KEY, FakeRunner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_axes_are_read_as_yaml_and_several_keys_make_a_grid():
    axes = parse_axes(["prune.threshold=0.1,0.3", "train.batch_size=4,8", "runner.gpus=[0,1],none"])
    assert axes == {"prune.threshold": [0.1, 0.3], "train.batch_size": [4, 8], "runner.gpus": [[0, 1], "none"]}
    grid = points({"prune.threshold": [0.1, 0.3], "train.batch_size": [4, 8]})
    assert [p.name for p in grid] == ["1-threshold=0.1_batch_size=4", "2-threshold=0.1_batch_size=8",
                                      "3-threshold=0.3_batch_size=4", "4-threshold=0.3_batch_size=8"]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_axes(["prune.threshold"])
    with pytest.raises(ConfigError, match="nothing to sweep"):
        points({})
    with pytest.raises(ConfigError, match=r"sweep: prune.threshold: 0.1 is given twice \(its points would run twice\)"):
        points(parse_axes(["prune.threshold=0.1,0.3,0.1"]))  # once two identical points, each run
    with pytest.raises(ConfigError, match=r"sweep: runner.gpus: \[0, 1\] is given twice"):
        points({"runner.gpus": [[0, 1], "none", [0, 1]]})


def test_points_that_read_as_the_same_config_are_refused(emulated_config, tmp_path):
    for values in ([2, 2.0], [3, "3"]):  # once each ran, and the table compared a point with itself
        with pytest.raises(ConfigError, match=r"sweep: points 1-epochs=\S+ \(train.epochs=\S+\) and 2-epochs=\S+ "
                                              r"\(train.epochs=\S+\) are the same config; give each value once"):
            run_sweep(emulated_config, {"train.epochs": values}, sweep_dir=tmp_path / "sweep", key=KEY,
                      events=Quiet(), runner_factory=lambda config: FakeRunner())
    assert not (tmp_path / "sweep").exists()


def test_a_point_stopped_before_any_stage_recorded_it_says_why():
    from tlt_pipe.manifest import Manifest
    from tlt_pipe.sweeps import Point, point_row

    point = Point("1-threshold=2", {"prune.threshold": 2})
    why = "sweep point 1-threshold=2: prune.threshold: not in 0..1"
    assert point_row(point, None, {}, None) == Row(point.name, point.values, "not run")
    row = point_row(point, None, {}, None, error=why)  # once "not run", and no reason anywhere
    assert (row.status, row.error) == ("failed", why)
    row = point_row(point, Manifest(tltpipe="0", name="a", network="ssd", toolkit="5.0"), {}, None, error=why)
    assert (row.status, row.error) == ("failed", why)


def _row(name, map_, size, ratio=None):
    return Row(name, {"prune.threshold": name}, "succeeded", mAP=map_, size_bytes=size, pruning_ratio=ratio)


def test_the_recommendation_is_the_smallest_model_within_the_allowed_drop():
    rows = [_row("a", 0.90, 400), _row("b", 0.89, 300), _row("c", 0.87, 200), _row("d", 0.50, 100)]
    assert recommend(rows, 0.905, 0.02).point == "b"  # c lost 0.035
    assert recommend(rows, 0.905, 0.05).point == "c"
    assert recommend(rows, None, 0.02).point == "b"  # no unpruned model: against the best point
    assert recommend(rows, 0.99, 0.01) is None
    assert recommend([Row("x", {}, "failed")], 0.9, 0.1) is None


def test_the_table_has_a_column_per_key_and_class():
    rows = [Row("1-threshold=0.1", {"prune.threshold": 0.1}, "succeeded", mAP=0.9, ap={"lpd": 0.9}, delta=-0.01,
                pruning_ratio=0.5, params=6_600_000, size_bytes=66_000),
            Row("2-threshold=0.3", {"prune.threshold": 0.3}, "failed")]
    table = list(csv.DictReader(io.StringIO(table_csv(rows))))
    assert table[0]["prune.threshold"] == "0.1" and table[0]["AP_lpd"] == "0.9" and table[0]["delta_mAP"] == "-0.01"
    assert table[1]["status"] == "failed" and table[1]["mAP"] == ""


@pytest.mark.usefixtures("emulated_tao")
def test_a_prune_sweep_trains_once_and_tabulates_every_threshold(emulated_config, tmp_path):
    runner = FakeRunner()
    thresholds = [0.1, 0.3, 0.5, 0.7]
    result = run_sweep(emulated_config, {"prune.threshold": thresholds}, sweep_dir=tmp_path / "sweep", key=KEY,
                       events=Quiet(), runner_factory=lambda config: runner, jobs=2, max_drop=0.5)
    assert runner.ran.count("train") == 1 and runner.ran.count("evaluate") == 1  # shared, in base/
    assert runner.ran.count("prune") == runner.ran.count("retrain") == runner.ran.count("evaluate_retrain") == 4
    assert "export" not in runner.ran  # a prune sweep stops at evaluate_retrain
    assert result.shared == ["prepare", "tfrecords", "train", "evaluate"]
    assert [r.status for r in result.rows] == ["succeeded"] * 4
    sizes = [r.size_bytes for r in result.rows]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]  # a higher threshold, a smaller model
    maps = [r.mAP for r in result.rows]
    assert maps == sorted(maps, reverse=True) and maps[-1] < maps[0]  # and a lower mAP
    assert result.baseline is not None and all(r.delta == round(r.mAP - result.baseline, 6) for r in result.rows)
    assert result.recommended == result.rows[-1]  # every point within 0.5 of the unpruned mAP: the smallest
    saved = json.loads(result.files["json"].read_text(encoding="utf-8"))
    assert [p["values"]["prune.threshold"] for p in saved["points"]] == thresholds
    assert result.files["plot"].read_bytes().startswith(b"\x89PNG")

    # Each point is an ordinary run directory: its own plan skips what it shares with base/.
    point = result.sweep_dir / "points" / result.rows[2].point
    train = load_manifest(point).stages["train"]
    assert train.reason == f"shared with {result.sweep_dir / 'base'}"
    assert all(str(point) in o["path"] for o in train.outputs) and (point / train.artifacts["model"]).is_file()
    steps = {s.name: s for s in tlt_pipe.plan(emulated_config.model_copy(update={
        "prune": emulated_config.prune.model_copy(update={"threshold": 0.5})}), run_dir=point, key=KEY,
        stages=(None, "evaluate_retrain"))}
    assert {n for n, s in steps.items() if s.action == "run"} == set(), steps

    runner.ran.clear()
    again = run_sweep(emulated_config, {"prune.threshold": thresholds}, sweep_dir=tmp_path / "sweep", key=KEY,
                      events=Quiet(), runner_factory=lambda config: runner, max_drop=0.0)
    assert runner.ran == [] and [r.mAP for r in again.rows] == maps  # all up to date: tabulated again
    assert again.recommended is None  # no pruned model keeps the unpruned mAP exactly


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_a_point_is_its_config_with_the_swept_values_and_nothing_else(example):
    config = tlt_pipe.load_config(EXAMPLES / example)
    assert with_values(config, {}, source="point") == config  # network defaults are not turned into settings
    changed = with_values(config, {"prune.threshold": 0.5, "train.batch_size": 2}, source="point")
    assert (changed.prune.threshold, changed.train.batch_size) == (0.5, 2)
    with pytest.raises(ConfigError, match=r"^point 3: prune.threshold=high: prune.threshold: "):
        with_values(config, {"prune.threshold": "high"}, source="point 3")


@pytest.mark.usefixtures("emulated_tao")
def test_ctrl_c_stops_every_point_and_the_next_sweep_finishes_them(emulated_config, tmp_path):
    runner = FakeRunner(hold=("retrain",))  # each point's retrain runs until it is stopped

    def press_ctrl_c_once_both_retrain():
        while runner.ran.count("retrain") < 2:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_once_both_retrain, daemon=True).start()
    with pytest.raises(Interrupted) as stopped:
        run_sweep(emulated_config, {"prune.threshold": [0.1, 0.5]}, sweep_dir=tmp_path / "sweep", key=KEY,
                  events=Quiet(), runner_factory=lambda config: runner, jobs=2)
    assert stopped.value.exit_code == 130 and sorted(runner.cancelled) == ["retrain", "retrain"]
    for point in (tmp_path / "sweep" / "points").iterdir():
        assert load_manifest(point).stages["retrain"].status == "interrupted"

    runner.hold, runner.ran = (), []
    result = run_sweep(emulated_config, {"prune.threshold": [0.1, 0.5]}, sweep_dir=tmp_path / "sweep", key=KEY,
                       events=Quiet(), runner_factory=lambda config: runner, jobs=2)
    assert sorted(runner.ran) == ["evaluate_retrain", "evaluate_retrain", "retrain", "retrain"]  # prune was kept
    assert [r.status for r in result.rows] == ["succeeded", "succeeded"]


@pytest.mark.usefixtures("emulated_tao")
def test_without_retraining_a_prune_sweep_stops_at_prune_and_reports_no_map(emulated_config, tmp_path):
    runner = FakeRunner()
    result = run_sweep(emulated_config, {"prune.threshold": [0.2, 0.6]}, sweep_dir=tmp_path / "sweep", key=KEY,
                       events=Quiet(), runner_factory=lambda config: runner, retrain=False)
    assert runner.ran.count("prune") == 2 and "retrain" not in runner.ran
    assert [r.mAP for r in result.rows] == [None, None]  # the pruned models were not evaluated
    assert result.rows[0].pruning_ratio > result.rows[1].pruning_ratio
    assert result.rows[0].params > result.rows[1].params  # the trained model's count, less what pruning took
    assert result.recommended is None
