"""Every network on every toolkit that ships it: specs render and validate, plans use the tutorials' commands."""

from __future__ import annotations

import pytest

from tlt_pipe.config import parse_config
from tlt_pipe.errors import ConfigError, SpecError
from tlt_pipe.networks import NETWORKS
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import Selection, stages_for
from tlt_pipe.specs import parse_spec
from tlt_pipe.stages import calibration, engine_eval, inference
from tlt_pipe.toolkits import TOOLKITS

SUPPORTED = [(n, t) for n in NETWORKS for t in TOOLKITS if t in NETWORKS[n].toolkits and NETWORKS[n].framework == "tao"]


class NoEvents:
    def __getattr__(self, name):
        return lambda *a, **k: None


def _pipeline(tmp_path, network, toolkit, extra=""):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "w.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
    text = (f"network: {network}\ntoolkit: '{toolkit}'\nname: t\ndataset: {{path: data, classes: {{plate: lpd}}}}\n"
            f"model: {{pretrained: w.hdf5}}\nrunner: {{gpus: 0}}\n{extra}")
    config = parse_config(text, source="t.yaml", base_dir=tmp_path)
    return Pipeline(config, tmp_path / "run", key="k3y", events=NoEvents())


def _steps(tmp_path, network, toolkit, extra=""):
    return {s.name: s for s in _pipeline(tmp_path, network, toolkit, extra).dry_run(Selection())}


def _after(argv, flag):
    return argv[argv.index(flag) + 1]


def _kind(network: str, path: str) -> str:
    if "tfrecords" in path:
        return "dataset_convert"
    return "detectnet_v2_inference" if path in (inference.INFERENCE_SPEC, engine_eval.INFERENCE_SPEC) else network


@pytest.mark.parametrize("network, toolkit", SUPPORTED)
def test_every_spec_renders_and_passes_the_schema_and_loader_checks(tmp_path, network, toolkit):
    net = NETWORKS[network]
    schema = TOOLKITS[toolkit].schema
    steps = _steps(tmp_path, network, toolkit, "engine: {data_type: int8}\n")
    specs = {path: text for step in steps.values() for path, text in step.plan.specs.items()}
    assert {"specs/train.txt", "specs/retrain.txt", "specs/tfrecords.txt"} <= set(specs)
    for path, text in specs.items():
        spec = parse_spec(text, schema, _kind(network, path), source=path)
        if _kind(network, path) == network:
            assert net.check_spec(spec) == [], path


TLT2_LAYOUT = [n for n in NETWORKS if NETWORKS[n].legacy_layout]


@pytest.mark.parametrize("network", TLT2_LAYOUT)
def test_tlt2_and_tao3_experiment_layouts_reject_each_other(tmp_path, network):
    """TLT 2.0 specs (DetectNet_v2-style dataset and augmentation) parse only against the TLT 2.0
    messages, TAO 3+ specs only against TAO's own."""
    for toolkit, wrong in (("2.0", "4.0"), ("3.21.11", "2.0"), ("5.0", "2.0")):
        steps = _steps(tmp_path, network, toolkit)
        for path in ("specs/train.txt", "specs/retrain.txt"):
            text = steps[path[6:-4]].plan.specs[path]
            parse_spec(text, TOOLKITS[toolkit].schema, network, source=path)
            with pytest.raises(SpecError, match="has no field named"):
                parse_spec(text, wrong, network, source=path)


@pytest.mark.parametrize("network", TLT2_LAYOUT)
def test_tlt2_plans_validate_on_tfrecords_of_resized_images(tmp_path, network):
    steps = _steps(tmp_path, network, "2.0")
    assert list(steps)[:3] == ["prepare", "tfrecords", "tfrecords_val"]
    assert steps["tfrecords_val"].argv[0] == "tlt-dataset-convert"
    assert steps["train"].argv[:2] == ["tlt-train", NETWORKS[network].task_name(True)]
    spec = parse_spec(steps["train"].plan.specs["specs/train.txt"], "2.0", network, source="t")
    data = spec.dataset_config
    assert data.WhichOneof("dataset_split_type") == "validation_data_source"
    assert data.validation_data_source.tfrecords_path == "/tltpipe/run/data/tfrecords_val/val*"
    assert data.data_sources[0].tfrecords_path == "/tltpipe/run/data/tfrecords/train*"
    assert data.image_extension == "<prepare.image_extension>"  # the dataset decides it: pending until prepare ran
    pre = spec.augmentation_config.preprocessing
    width, height = NETWORKS[network].default_input
    assert (pre.output_image_width, pre.output_image_height, pre.output_image_channel) == (width, height, 3)
    assert (pre.crop_right, pre.crop_bottom) == (width, height)
    if network == "yolo_v3":
        assert spec.HasField("yolo_config") and spec.yolo_config.small_anchor_shape == "<anchors.small_anchor_shape>"
    assert parse_config(f"network: {network}\ntoolkit: 2.0\nname: t\ndataset: {{path: d}}\n", source="t.yaml",
                        base_dir=tmp_path).dataset.resize == f"{width}x{height}"
    text = f"network: {network}\ntoolkit: 2.0\nname: t\ndataset: {{path: d, resize: 640x480}}\n"
    with pytest.raises(ConfigError, match=f"{network} in toolkit 2.0 trains on images of its input size: "
                                          f"dataset.resize is 640x480, the model input is {width}x{height}"):
        parse_config(text, source="t.yaml", base_dir=tmp_path)
    parse_config(text.replace("2.0", "5.0"), source="t.yaml", base_dir=tmp_path)
    assert "tfrecords_val" not in _steps(tmp_path, network, "3.22.05")


def test_yolo_start_models_are_spec_fields(tmp_path):
    steps = _steps(tmp_path, "yolo_v4", "3.21.11")
    train_spec = parse_spec(steps["train"].plan.specs["specs/train.txt"], "4.0", "yolo_v4", source="t")
    retrain_spec = parse_spec(steps["retrain"].plan.specs["specs/retrain.txt"], "4.0", "yolo_v4", source="r")
    assert train_spec.training_config.pretrain_model_path == "/tltpipe/inputs/pretrained/w.hdf5"
    assert retrain_spec.training_config.WhichOneof("load_model") == "pruned_model_path"
    assert retrain_spec.training_config.regularizer.type == 0  # NO_REG
    assert train_spec.yolov4_config.small_anchor_shape == "<anchors.small_anchor_shape>"
    assert train_spec.dataset_config.image_extension == "<prepare.image_extension>"
    assert "-m" not in steps["train"].argv and "--initial_epoch" not in steps["train"].argv


@pytest.mark.parametrize("toolkit", ["2.0", "3.21.11", "5.0"])
def test_retinanet_start_models_are_spec_fields_not_train_flags(tmp_path, toolkit):
    """retinanet train has no -m: pretrained and pruned models go into training_config."""
    steps = _steps(tmp_path, "retinanet", toolkit)
    schema = TOOLKITS[toolkit].schema
    train_spec = parse_spec(steps["train"].plan.specs["specs/train.txt"], schema, "retinanet", source="t")
    retrain_spec = parse_spec(steps["retrain"].plan.specs["specs/retrain.txt"], schema, "retinanet", source="r")
    assert train_spec.training_config.pretrain_model_path == "/tltpipe/inputs/pretrained/w.hdf5"
    assert retrain_spec.training_config.pruned_model_path == f"/tltpipe/run/prune/retinanet_pruned.{TOOLKITS[toolkit].checkpoint_ext}"
    for stage in ("train", "retrain"):
        assert "-m" not in steps[stage].argv and "--initial_epoch" not in steps[stage].argv
    assert "-e" not in steps["prune"].argv  # only YOLO's prune reads the spec


@pytest.mark.parametrize("toolkit, period", [("3.21.11", False), ("5.0", False), ("2.0", True)])
def test_yolo_validates_at_checkpoints_from_tao3(tmp_path, toolkit, period):
    steps = _steps(tmp_path, "yolo_v3", toolkit, "train: {checkpoint_interval: 2}\n")
    spec = parse_spec(steps["train"].plan.specs["specs/train.txt"], TOOLKITS[toolkit].schema, "yolo_v3", source="t")
    assert ("validation_period_during_training" in spec.eval_config.DESCRIPTOR.fields_by_name) == period
    assert spec.training_config.checkpoint_interval == 2
    if not period:
        with pytest.raises(ConfigError, match=r"train: validation_period: yolo_v3 on TAO .* validates at every "
                                              "checkpoint .*set checkpoint_interval instead"):
            _steps(tmp_path, "yolo_v3", toolkit, "train: {validation_period: 5}\n")
        with pytest.raises(ConfigError, match="retrain: validation_period"):
            _steps(tmp_path, "yolo_v3", toolkit, "retrain: {validation_period: 5}\n")
        _steps(tmp_path, "yolo_v3", toolkit, "train: {validation_period: 2, checkpoint_interval: 2}\n")


@pytest.mark.parametrize("toolkit, value", [("4.0", 0.05), ("5.0", 1)])
def test_detectnet_dbscan_min_samples_follows_its_type(tmp_path, toolkit, value):
    steps = _steps(tmp_path, "detectnet_v2", toolkit)
    spec = parse_spec(steps["train"].plan.specs["specs/train.txt"], TOOLKITS[toolkit].schema, "detectnet_v2",
                      source="t")
    clustering = spec.postprocessing_config.target_class_config["lpd"].clustering_config
    assert clustering.dbscan_min_samples == pytest.approx(value)
    if toolkit == "5.0":
        with pytest.raises(ConfigError, match="lpd.clustering_config.dbscan_min_samples: expected an integer"):
            _steps(tmp_path, "detectnet_v2", toolkit, "spec_overrides:\n  experiment:\n    postprocessing_config."
                   "target_class_config: {lpd: {clustering_config: {dbscan_min_samples: 0.05}}}\n")


@pytest.mark.parametrize("network", ["yolo_v4", "yolo_v4_tiny"])
def test_yolo_v4_loader_ranges_are_checked_before_any_container(tmp_path, network):
    overrides = "spec_overrides:\n  experiment: {augmentation_config.mosaic_min_ratio: 0.6}\n"
    with pytest.raises(SpecError, match=r"augmentation_config.mosaic_min_ratio: 0.6\d* is not in \(0.0, 0.5\)"):
        _steps(tmp_path, network, "5.0", overrides)


def test_engine_workspace_is_gb_for_gen_trt_engine_and_bytes_for_the_converter(tmp_path):
    tao5 = _steps(tmp_path, "ssd", "5.0", "engine: {workspace_mb: 3000}\n")["engine"].argv
    assert _after(tao5, "--max_workspace_size") == "3"
    tao3 = _steps(tmp_path, "ssd", "3.21.11", "engine: {workspace_mb: 3000}\n")["engine"].argv
    assert _after(tao3, "-w") == str(3000 * 1024 * 1024)


def test_tlt2_export_writes_no_deepstream_config(tmp_path):
    tlt2 = _steps(tmp_path, "detectnet_v2", "2.0")["export"].plan
    assert "--gen_ds_config" not in tlt2.argv and "-e" not in tlt2.argv
    assert tlt2.outputs == ("export/model.etlt",)
    tao3 = _steps(tmp_path, "detectnet_v2", "3.21.11")["export"].plan
    assert "--gen_ds_config" in tao3.argv and "export/nvinfer_config.txt" in tao3.outputs


def test_yolo_v4_tutorial_commands(tmp_path):
    steps = _steps(tmp_path, "yolo_v4", "3.21.11", "prune: {threshold: 0.7, equalization: union}\n"
                                                   "anchors: {mode: tao}\n")
    assert list(steps)[:4] == ["prepare", "tfrecords", "anchors", "train"]
    assert steps["anchors"].argv[:2] == ["yolo_v4", "kmeans"]
    assert [_after(steps["anchors"].argv, f) for f in ("-x", "-y", "-n")] == ["320", "320", "9"]
    prune = steps["prune"].argv
    assert prune[-4:] == ["-eq", "union", "-pth", "0.7"] and _after(prune, "-e") == "/tltpipe/run/specs/train.txt"
    engine = steps["engine"].argv
    assert engine[0] == "converter" and _after(engine, "-o") == "BatchedNMS" and "-p" not in engine


def test_native_anchors_run_on_the_host_and_tiny_has_two_groups(tmp_path):
    steps = _steps(tmp_path, "yolo_v4_tiny", "5.0")
    assert steps["anchors"].plan.image is None and steps["anchors"].plan.params["count"] == 6
    with pytest.raises(ConfigError, match="anchors.count: 8 anchors do not split"):
        _steps(tmp_path, "yolo_v4", "5.0", "anchors: {count: 8}\n")


def test_dynamic_shape_etlt_gets_an_optimization_profile(tmp_path):
    for network in ("yolo_v4", "ssd", "retinanet", "dssd", "yolo_v3"):
        engine = _steps(tmp_path, network, "3.22.05")["engine"].argv
        h, w = (320, 320) if network.startswith("yolo_v4") else (416, 416) if network == "yolo_v3" else \
            (384, 384) if network == "retinanet" else (300, 300)
        assert _after(engine, "-p") == f"Input,1x3x{h}x{w},16x3x{h}x{w},16x3x{h}x{w}"
    assert "-p" not in _steps(tmp_path, "detectnet_v2", "3.22.05")["engine"].argv
    assert "-p" not in _steps(tmp_path, "yolo_v4", "3.21.11")["engine"].argv


def test_detectnet_v2_masks_tutorial_on_tlt2(tmp_path):
    steps = _steps(tmp_path, "detectnet_v2", "2.0", "engine: {data_type: int8}\n")
    assert list(steps) == ["prepare", "tfrecords", "tfrecords_val", "train", "evaluate", "prune", "retrain",
                           "evaluate_retrain", "calibration_tensorfile", "export", "engine", "inference",
                           "inference_engine", "deepstream"]  # TLT 2.0 evaluates no DetectNet_v2 engine
    assert steps["tfrecords"].argv[0] == "tlt-dataset-convert"
    assert steps["train"].argv[:2] == ["tlt-train", "detectnet_v2"] and "-m" not in steps["train"].argv
    assert steps["prune"].argv[0] == "tlt-prune"
    assert steps["calibration_tensorfile"].argv[:2] == ["tlt-int8-tensorfile", "detectnet_v2"]
    export = steps["export"].argv
    assert export[:2] == ["tlt-export", "detectnet_v2"] and _after(export, "--data_type") == "int8"
    assert _after(export, "--cal_data_file") == "/tltpipe/run/calibration/calibration.tensorfile" and "--cal_cache_file" in export
    engine = steps["engine"].argv
    assert engine[0] == "tlt-converter" and _after(engine, "-o") == "output_cov/Sigmoid,output_bbox/BiasAdd"
    assert _after(engine, "-d") == "3,544,960" and _after(engine, "-t") == "int8" and "-c" in engine
    assert steps["inference"].argv[:2] == ["tlt-infer", "detectnet_v2"] and "-m" not in steps["inference"].argv
    spec = parse_spec(steps["retrain"].plan.specs["specs/retrain.txt"], "2.0", "detectnet_v2", source="r")
    assert spec.model_config.load_graph and spec.model_config.pretrained_model_file == "/tltpipe/run/prune/model_pruned.tlt"
    assert [e.key for e in spec.postprocessing_config.target_class_config] == ["lpd"]
    assert spec.dataset_config.validation_data_source.tfrecords_path == "/tltpipe/run/data/tfrecords_val/val*"
    infer = parse_spec(steps["inference"].plan.specs[inference.INFERENCE_SPEC], "2.0", "detectnet_v2_inference",
                       source="i")
    assert infer.bbox_handler_config.kitti_dump
    on_engine = steps["inference_engine"]  # the engine in the inference spec, as NVIDIA's TLT 2.0 specs name it
    trt = parse_spec(on_engine.plan.specs[engine_eval.INFERENCE_SPEC], "2.0", "detectnet_v2_inference", source="e")
    assert trt.inferencer_config.tensorrt_config.trt_engine == "/tltpipe/run/engine/model.int8.engine"
    assert on_engine.argv[:2] == ["tlt-infer", "detectnet_v2"] and on_engine.plan.probe


def test_detectnet_v2_resizes_to_its_input(tmp_path):
    pipeline = _pipeline(tmp_path, "detectnet_v2", "5.0")
    assert pipeline.config.dataset.resize == "960x544"
    with pytest.raises(ConfigError, match=r"t.yaml:\d+: model: .*dataset.resize is 640x480"):
        parse_config("network: detectnet_v2\nname: t\ndataset: {path: data, resize: 640x480}\n",
                     source="t.yaml", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="input_width 950 is not a multiple of 16"):
        parse_config("network: detectnet_v2\nname: t\ndataset: {path: data}\nmodel: {input_width: 950}\n",
                     source="t.yaml", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="evaluate.epoch"):
        _steps(tmp_path, "detectnet_v2", "5.0", "evaluate: {epoch: 3}\n")


def test_int8_calibration_moves_with_the_toolkit(tmp_path):
    int8 = "engine: {data_type: int8}\n"
    tao3 = _steps(tmp_path, "ssd", "3.21.11", int8)
    assert "--cal_image_dir" in tao3["export"].argv and _after(tao3["engine"].argv, "-c") == "/tltpipe/run/export/cal.bin"
    tao4 = _steps(tmp_path, "ssd", "4.0", int8)
    assert _after(tao4["export"].argv, "--data_type") == "fp32"
    assert tao4["engine"].argv[:2] == ["ssd", "gen_trt_engine"] and "--cal_image_dir" in tao4["engine"].argv
    tao5 = _steps(tmp_path, "detectnet_v2", "5.0", int8)
    assert "calibration_tensorfile" not in tao5 and "--cal_image_dir" in tao5["engine"].argv


def test_calibration_never_asks_for_more_images_than_there_are(tmp_path):
    from tlt_pipe.planner import build_context
    from tlt_pipe.manifest import Manifest, StageRecord

    pipeline = _pipeline(tmp_path, "ssd", "3.21.11", "engine: {data_type: int8, cal_batches: 10}\n")
    manifest = Manifest(tltpipe="t", name="t", network="ssd", toolkit="3.21.11")
    manifest.stages["prepare"] = StageRecord(status="succeeded", metrics={"train_images": 36})
    cal = calibration.calibration(build_context(pipeline.config, pipeline.run_dir, manifest, "k"))
    assert (cal.batch_size, cal.batches, cal.images) == (16, 2, 32)


def test_tlt2_names_yolo_v3_yolo_and_has_no_yolo_v4(tmp_path):
    steps = _steps(tmp_path, "yolo_v3", "2.0")
    assert steps["train"].argv[:2] == ["tlt-train", "yolo"] and steps["export"].argv[:2] == ["tlt-export", "yolo"]
    with pytest.raises(ConfigError, match="yolo_v4 is not available in toolkit 2.0"):
        _pipeline(tmp_path, "yolo_v4", "2.0")
    with pytest.raises(ConfigError, match="no 'kmeans' task"):
        _steps(tmp_path, "yolo_v3", "2.0", "anchors: {mode: tao}\n")


def test_a_stage_of_another_network_is_refused_clearly(tmp_path):
    pipeline = _pipeline(tmp_path, "ssd", "5.0")
    with pytest.raises(ConfigError, match="stage 'anchors' does not exist for this network"):
        pipeline.dry_run(Selection("anchors", "anchors"))
    assert [s.name for s in stages_for(_pipeline(tmp_path, "yolo_v3", "5.0").config)][2] == "anchors"
    train = next(s for s in stages_for(_pipeline(tmp_path, "yolo_v3", "5.0").config) if s.name == "train")
    assert "anchors" in train.needs


@pytest.mark.parametrize("network", list(NETWORKS))
def test_init_writes_a_valid_config_for_every_network(tmp_path, network):
    from tlt_pipe.starter import starter_config

    toolkit = NETWORKS[network].default_toolkit or "5.0"
    text = starter_config(network, toolkit=None if NETWORKS[network].default_toolkit else toolkit, dataset_path="data")
    (tmp_path / "data").mkdir()
    checkout = tmp_path / "jetson-inference/python/training/detection/ssd"  # ssd_mobilenet's pytorch_ssd.repo
    (checkout / "models").mkdir(parents=True)
    (checkout / "train_ssd.py").write_text("")
    (checkout / "models" / "mobilenet-v1-ssd-mp-0_675.pth").write_bytes(b"")
    config = parse_config(text, source="init.yaml", base_dir=tmp_path, sets=["runner.gpus=0"])
    assert config.network == network and config.model.arch == NETWORKS[network].default_arch
    steps = Pipeline(config, tmp_path / "run", key=None, events=NoEvents()).dry_run(Selection())
    last = {"pytorch_ssd": "detectnet", "tao_pyt": "inference_engine", "tao": "deepstream"}
    assert steps[-1].name == last[NETWORKS[network].framework]
    if network == "yolo_v4":
        assert (config.prune.threshold, config.prune.equalization) == (0.7, "union")
    # YOLO validates at every checkpoint: init sets the interval, not a validation period.
    if NETWORKS[network].framework == "tao":
        assert ("validation_period" in text) != NETWORKS[network].validation_at_checkpoints(toolkit)


def _resumable(tmp_path, network, files):
    from tlt_pipe.manifest import Manifest, StageRecord
    from tlt_pipe.planner import build_context

    pipeline = _pipeline(tmp_path, network, "5.0")
    for rel in files:
        path = pipeline.run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
    manifest = Manifest(tltpipe="t", name="t", network=network, toolkit="5.0")
    manifest.stages["train"] = StageRecord(status="failed")
    return build_context(pipeline.config, pipeline.run_dir, manifest, "k3y", Selection(resume=True))


def test_yolo_resumes_through_a_resume_spec_naming_the_checkpoint(tmp_path):
    from tlt_pipe.stages import train

    ctx = _resumable(tmp_path, "yolo_v4", ["train/weights/yolov4_resnet18_epoch_001.hdf5",
                                           "train/weights/yolov4_resnet18_epoch_002.hdf5"])
    plan = train.plan_train(ctx)
    assert _after(list(plan.argv), "-e") == "/tltpipe/run/specs/train.resume.txt"
    assert _after(list(plan.fresh_argv), "-e") == "/tltpipe/run/specs/train.txt" and plan.clean == ()
    train.before_training(ctx, plan)
    spec = parse_spec((ctx.workspace.host("specs/train.resume.txt")).read_text(), "5.0", "yolo_v4", source="r")
    assert spec.training_config.resume_model_path == "/tltpipe/run/train/weights/yolov4_resnet18_epoch_002.hdf5"


def test_detectnet_resumes_by_keeping_its_results_directory(tmp_path):
    from tlt_pipe.stages import train

    ctx = _resumable(tmp_path, "detectnet_v2", ["train/model.epoch-1.ckzip", "train/model.epoch-2.ckzip"])
    plan = train.plan_train(ctx)
    assert plan.clean == () and plan.resumed_from["epoch"] == 2 and plan.fresh_argv is None
    assert "-m" not in plan.argv and "--initial_epoch" not in plan.argv
    ctx = _resumable(tmp_path, "detectnet_v2", [])
    with pytest.raises(ConfigError, match="always resumes from its newest"):
        train.plan_train(ctx.__class__(**{**ctx.__dict__, "resume_epoch": 1}))


@pytest.mark.parametrize("network, toolkit", SUPPORTED)
def test_the_largest_config_values_render_specs_that_parse(tmp_path, network, toolkit):
    """The config's bounds are the spec fields' types: a value the config accepts never fails in the spec."""
    (tmp_path / "data").mkdir()
    big = ["train.epochs=4294967295", "train.batch_size=4294967295", "train.random_seed=4294967295",
           "train.n_workers=4294967295", "model.nlayers=2147483647", "model.freeze_blocks=[4294967295]",
           "train.checkpoint_interval=4294967295", "model.input_width=8192", "model.input_height=8192",
           "train.learning_rate.max=3.4e38", "train.regularizer.weight=3.4e38", "runner.gpus=0"]
    text = f"network: {network}\ntoolkit: '{toolkit}'\nname: t\ndataset: {{path: data, classes: {{plate: lpd}}}}\n"
    config = parse_config(text, source="t.yaml", base_dir=tmp_path, sets=big)
    steps = Pipeline(config, tmp_path / "run", key="k3y", events=NoEvents()).dry_run(Selection())
    schema = TOOLKITS[toolkit].schema
    for path, text in ((p, t) for step in steps for p, t in step.plan.specs.items()):
        parse_spec(text, schema, _kind(network, path), source=path)
