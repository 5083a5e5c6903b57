"""tltpipe compare: config and metric differences of two or more run directories."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tlt_pipe.cli import main
from tlt_pipe.compare import config_diff, flatten
from tlt_pipe.manifest import Manifest, StageRecord, save_manifest


def make_run(path, *, epochs, mAP, ap, duration):
    path.mkdir(parents=True)
    config = {"network": "ssd", "name": path.name, "train": {"epochs": epochs, "batch_size": 4},
              "runner": {"gpus": 0}}
    if epochs > 6:
        config["prune"] = {"threshold": 0.3}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    stages = {"train": StageRecord(status="succeeded", duration_s=duration, metrics={"mAP": mAP, "selected_by": "x"}),
              "evaluate": StageRecord(status="succeeded", metrics={"mAP": mAP, "ap": {"lpd": ap}})}
    save_manifest(path, Manifest(tltpipe="0.1.0", name=path.name, network="ssd", toolkit="5.0", stages=stages))
    return path


def test_flatten_and_diff():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": 1, "a.c": [1, 2], "d": {}}
    diff = config_diff([{"a": {"b": 1}, "x": 1}, {"a": {"b": 2}, "x": 1, "y": 3}])
    assert [(d.key, d.values) for d in diff] == [("a.b", (1, 2)), ("y", ("<absent>", 3))]
    assert config_diff([{"x": 1}, {"x": 1}, {"x": 2}])[0].values == (1, 1, 2)  # differs in one of three


def test_compare_tables_and_json(tmp_path):
    a = make_run(tmp_path / "a", epochs=6, mAP=0.5, ap=0.5, duration=10.0)
    b = make_run(tmp_path / "b", epochs=12, mAP=0.6, ap=0.62, duration=20.0)
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == [str(a), str(b)]
    assert {(d["key"], *map(str, d["values"])) for d in data["config"]} == {
        ("name", "a", "b"), ("train.epochs", "6", "12"), ("prune.threshold", "<absent>", "0.3")}
    rows = {(m["stage"], m["metric"]): (*m["values"], m["deltas"][1]) for m in data["metrics"]}
    assert rows[("train", "mAP")] == (0.5, 0.6, 0.1)
    assert rows[("evaluate", "AP lpd")] == (0.5, 0.62, 0.12)
    assert rows[("train", "duration_s")] == (10.0, 20.0, 10.0)
    assert ("train", "selected_by") not in rows

    text = CliRunner().invoke(main, ["compare", str(a), str(b)], env={"NO_COLOR": "1", "COLUMNS": "160"}).output
    assert "config differences" in text and "train.epochs" in text and "+0.1000" in text


def test_compare_takes_every_point_of_a_sweep(tmp_path):
    runs = [make_run(tmp_path / name, epochs=epochs, mAP=m, ap=m, duration=1.0)
            for name, epochs, m in (("a", 6, 0.5), ("b", 12, 0.6), ("c", 6, 0.4))]
    data = json.loads(CliRunner().invoke(main, ["compare", *map(str, runs), "--json"]).output)
    rows = {(m["stage"], m["metric"]): m for m in data["metrics"]}
    assert rows[("evaluate", "mAP")]["values"] == [0.5, 0.6, 0.4]
    assert rows[("evaluate", "mAP")]["deltas"] == [0.0, 0.1, -0.1]
    one = CliRunner().invoke(main, ["compare", str(runs[0])])
    assert one.exit_code == 2 and "two or more run directories" in one.output


def test_compare_needs_run_directories(tmp_path):
    a = make_run(tmp_path / "a", epochs=6, mAP=0.5, ap=0.5, duration=1.0)
    result = CliRunner().invoke(main, ["compare", str(a), str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.json" in result.output
