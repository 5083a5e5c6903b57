from __future__ import annotations

import json

import pytest

from tlt_pipe.config import load_config
from tlt_pipe.errors import ConfigError
from tlt_pipe.fingerprint import digest_of, path_fingerprint
from tlt_pipe.manifest import Manifest, StageRecord
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import ALL_STAGES, Selection, decide

# The SSD chain: every stage but the extras other networks add.
STAGE_NAMES = [s.name for s in ALL_STAGES if s.name not in ("tfrecords_val", "anchors", "calibration_tensorfile")]


class NoEvents:
    def __getattr__(self, name):
        return lambda *a, **k: None


def _pipeline(write_config, tmp_path, toolkit="5.0", extra="", key="s3cr3t-key"):
    config = load_config(write_config(toolkit, extra))
    return Pipeline(config, tmp_path / "runs" / "lpd", key=key, events=NoEvents())


def _steps(pipeline, **selection):
    return {s.name: s for s in pipeline.dry_run(Selection(**selection))}


def test_fresh_run_plans_every_stage_in_order(write_config, tmp_path):
    steps = list(_pipeline(write_config, tmp_path).dry_run(Selection()))
    assert [s.name for s in steps] == STAGE_NAMES
    assert all(s.action == "run" for s in steps)
    assert steps[0].reason == "has not run yet" and steps[1].reason == "after prepare runs"


def test_tao5_commands(write_config, tmp_path):
    steps = _steps(_pipeline(write_config, tmp_path))
    assert steps["tfrecords"].argv == ["ssd", "dataset_convert", "-d", "/tltpipe/run/specs/tfrecords.txt",
                                       "-o", "/tltpipe/run/data/tfrecords/train"]
    train = steps["train"].argv
    assert train[:6] == ["ssd", "train", "-e", "/tltpipe/run/specs/train.txt", "-r", "/tltpipe/run/train"]
    assert ["-k", "***"] == train[6:8]
    assert train[8:10] == ["-m", "/tltpipe/inputs/pretrained/resnet_18.hdf5"]
    assert steps["prune"].argv[-4:] == ["-eq", "intersection", "-pth", "0.1"]
    # Paths fixed by the network and toolkit are real before anything runs; only the best epoch is pending.
    prune_out = steps["prune"].argv[steps["prune"].argv.index("-o") + 1]
    assert steps["retrain"].argv[steps["retrain"].argv.index("-m") + 1] == prune_out == "/tltpipe/run/prune/ssd_pruned.hdf5"
    assert steps["prune"].argv[steps["prune"].argv.index("-m") + 1] == "/tltpipe/run/train/weights/ssd_resnet18_epoch_<best>.hdf5"
    assert steps["evaluate"].argv[steps["evaluate"].argv.index("-m") + 1] == steps["prune"].argv[steps["prune"].argv.index("-m") + 1]
    export = steps["export"].argv
    assert "--gen_ds_config" in export and export[export.index("-o") + 1] == "/tltpipe/run/export/ssd.onnx"
    assert steps["export"].plan.clean == ("export",)
    engine = steps["engine"]
    assert engine.plan.image == "nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy"
    assert engine.argv[:2] == ["ssd", "gen_trt_engine"] and "--engine_file" in engine.argv
    assert steps["train"].plan.image == "nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5"


@pytest.mark.parametrize("written", ["6.26.3", "6", "6.26"])
def test_tao_6_runs_the_tf1_networks_where_nvidias_launcher_does(write_config, tmp_path, written):
    """TF1 tasks in TAO 5.0.0's image, engines and the tasks on them in 6.26.3's Deploy image."""
    steps = _steps(_pipeline(write_config, tmp_path, toolkit=written))
    tf1, deploy = "nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5", "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy"
    for name in ("tfrecords", "train", "evaluate", "prune", "retrain", "export", "inference"):
        assert steps[name].plan.image == tf1, name
    for name in ("engine", "evaluate_engine", "inference_engine"):
        assert steps[name].plan.image == deploy, name
    assert steps["engine"].argv[:2] == ["ssd", "gen_trt_engine"]
    assert steps["export"].argv[steps["export"].argv.index("-o") + 1] == "/tltpipe/run/export/ssd.onnx"


def test_tao3_converter_like_the_tutorial(write_config, tmp_path):
    steps = _steps(_pipeline(write_config, tmp_path, "3.21.11"))
    assert steps["engine"].argv == ["converter", "-k", "***", "-d", "3,320,320", "-o", "NMS",
                                    "-e", "/tltpipe/run/engine/ssd.fp32.engine", "-m", "16", "-t", "fp32",
                                    "-i", "nchw", "/tltpipe/run/export/ssd.etlt"]
    assert steps["export"].argv[steps["export"].argv.index("-o") + 1] == "/tltpipe/run/export/ssd.etlt"
    assert steps["prune"].argv[steps["prune"].argv.index("-o") + 1] == "/tltpipe/run/prune/ssd_pruned.tlt"
    assert steps["inference"].argv[steps["inference"].argv.index("-o") + 1] == "/tltpipe/run/infer/images"
    dynamic = _steps(_pipeline(write_config, tmp_path, "3.22.05"))["engine"].argv
    assert dynamic[dynamic.index("-p") + 1] == "Input,1x3x320x320,16x3x320x320,16x3x320x320"


def test_tlt2_uses_the_tlt_commands(write_config, tmp_path):
    steps = _steps(_pipeline(write_config, tmp_path, "2.0"))
    assert steps["tfrecords"].argv[0] == "tlt-dataset-convert"
    assert steps["train"].argv[:2] == ["tlt-train", "ssd"]
    assert steps["prune"].argv[0] == "tlt-prune"
    assert steps["engine"].argv[0] == "tlt-converter"
    assert steps["train"].plan.image == "nvcr.io/nvidia/tlt-streamanalytics:v2.0_py3"


def test_the_key_never_shows_in_the_plan(write_config, tmp_path):
    steps = _pipeline(write_config, tmp_path, "3.21.11").dry_run(Selection())
    assert "s3cr3t-key" not in json.dumps([s.as_json() for s in steps])


def test_from_and_to_select_a_range(write_config, tmp_path):
    steps = _pipeline(write_config, tmp_path).dry_run(Selection(from_stage="prune", to_stage="export"))
    assert [s.name for s in steps] == ["prune", "retrain", "evaluate_retrain", "export"]
    with pytest.raises(ConfigError, match="comes after"):
        Selection(from_stage="export", to_stage="train").names(ALL_STAGES)


def test_key_is_required_for_encrypted_toolkits(write_config, tmp_path):
    pipeline = _pipeline(write_config, tmp_path, "4.0", key=None)
    with pytest.raises(ConfigError, match="TLTPIPE_KEY is not set"):
        pipeline.run(Selection())


def test_missing_upstream_is_named(write_config, tmp_path):
    pipeline = _pipeline(write_config, tmp_path)
    with pytest.raises(ConfigError, match="stage export needs retrain, which has not succeeded"):
        pipeline.planner.check_upstream(Selection("export", "export"), None)


def test_a_dry_run_previews_a_stage_whose_upstream_has_not_succeeded_and_says_a_run_would_stop(write_config, tmp_path):
    pipeline = _pipeline(write_config, tmp_path)
    steps = {s.name: s for s in pipeline.dry_run(Selection(from_stage="prune", to_stage="retrain"))}
    assert steps["prune"].action == "run" and steps["prune"].plan.argv  # still planned in full
    assert steps["prune"].reason.endswith("; needs train, which has not succeeded here (never ran): a run stops "
                                          "before it starts")
    assert "needs" not in steps["retrain"].reason  # its upstream, prune, is in the selection
    assert all("needs" not in s.reason for s in pipeline.dry_run(Selection()))


def _record(parts, outputs=()):
    return StageRecord(status="succeeded", inputs=dict(parts), fingerprint=digest_of(parts),
                       outputs=[path_fingerprint(p) for p in outputs], ended="then")


def test_decide_skips_only_when_inputs_and_outputs_are_unchanged(tmp_path):
    stage = next(s for s in ALL_STAGES if s.name == "train")
    out = tmp_path / "model.hdf5"
    out.write_bytes(b"weights")
    parts = {"image": "img", "argv": "ssd train", "spec:specs/train.txt": "abc"}
    record = _record(parts, [out])
    assert decide(stage, parts, record, force=False, upstream_will_run=None)[0] == "skip"
    action, reason = decide(stage, {**parts, "spec:specs/train.txt": "def"}, record, force=False, upstream_will_run=None)
    assert (action, reason) == ("run", "changed: spec specs/train.txt")
    assert decide(stage, parts, record, force=True, upstream_will_run=None) == ("run", "forced (--force)")
    out.write_bytes(b"other weights")
    action, reason = decide(stage, parts, record, force=False, upstream_will_run=None)
    assert action == "run" and "changed since it was written" in reason
    out.unlink()
    assert decide(stage, parts, record, force=False, upstream_will_run=None)[1].endswith("is missing")
    failed = record.model_copy(update={"status": "failed"})
    assert decide(stage, parts, failed, force=False, upstream_will_run=None) == ("run", "last attempt failed")


def test_a_config_change_replans_the_affected_stage_and_everything_after(write_config, tmp_path):
    pipeline = _pipeline(write_config, tmp_path)
    manifest = Manifest(tltpipe="t", name="lpd", network="ssd", toolkit="5.0")
    # Pretend every stage succeeded, in order, with exactly the plan it had at that point.
    for name in STAGE_NAMES:
        (step,) = pipeline.plan(Selection(name, name), manifest)
        manifest.stages[name] = _record(step.parts)
    assert all(s.action == "skip" for s in pipeline.plan(Selection(), manifest))
    changed = _pipeline(write_config, tmp_path, extra="prune: {threshold: 0.3}\n")
    steps = changed.plan(Selection(), manifest)
    actions = {s.name: (s.action, s.reason) for s in steps}
    assert actions["train"][0] == "skip"
    assert actions["prune"][0] == "run" and "argv" in actions["prune"][1]
    assert actions["retrain"] == ("run", "after prune runs")
    assert all(actions[n][0] == "run" for n in STAGE_NAMES[STAGE_NAMES.index("prune"):])


def test_needs_follow_from_what_each_stage_reads(tmp_path):
    """No stage declares what it needs: it is what the stages whose artifacts it reads come to, less what
    another of them already needs. A network's extra stage (anchors, tfrecords_val, the DetectNet_v2
    tensorfile) is needed where it is read, and not at all where the run does not have it."""
    from tlt_pipe.config import parse_config
    from tlt_pipe.planner import stages_for

    def needs(network, toolkit, extra=""):
        (tmp_path / "data").mkdir(exist_ok=True)
        text = f"network: {network}\ntoolkit: '{toolkit}'\nname: n\ndataset: {{path: data}}\n{extra}"
        return {s.name: s.needs for s in stages_for(parse_config(text, source="n.yaml", base_dir=tmp_path))}

    ssd = needs("ssd", "5.0")
    assert ssd == {"prepare": (), "tfrecords": ("prepare",), "train": ("tfrecords",), "evaluate": ("train",),
                   "prune": ("train",), "retrain": ("prune",), "evaluate_retrain": ("retrain",),
                   "export": ("retrain",), "engine": ("export",), "inference": ("retrain",),
                   "evaluate_engine": ("engine", "evaluate_retrain"), "inference_engine": ("engine",),
                   "deepstream": ("engine",)}
    yolo = needs("yolo_v4", "5.0")
    assert yolo["anchors"] == ("prepare",) and yolo["train"] == ("tfrecords", "anchors")
    detectnet = needs("detectnet_v2", "3.21.11", "engine: {data_type: int8}\n")
    assert detectnet["train"] == ("tfrecords", "tfrecords_val")
    assert detectnet["calibration_tensorfile"] == ("retrain",)
    assert detectnet["export"] == ("calibration_tensorfile",)  # which itself needs retrain
