"""Unit tests of the emulator's spec schemas (NVIDIA's messages, read from the wheels) and model
files (no Docker needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import emu_samples as samples  # noqa: E402
from tao_emulator import catalog, modelio, nvidia, spec  # noqa: E402
from tao_emulator.runtime import TaskFailed  # noqa: E402

TF = "/r/tfrecords/train"
REAL = ("4.0", "5.0")  # the schema versions read from NVIDIA's wheels
KINDS = ("ssd", "dssd", "retinanet", "yolo_v3", "yolo_v4", "yolo_v4_tiny", "detectnet_v2",
         "detectnet_v2_inference", "dataset_convert")


@pytest.mark.parametrize("version", REAL)
@pytest.mark.parametrize("kind", KINDS)
def test_every_real_schema_builds(version, kind):
    assert spec.message_class(version, kind)().DESCRIPTOR.name == nvidia.roots()[kind]


@pytest.mark.parametrize("kind", sorted(spec._schema.SCHEMAS))
def test_every_tlt2_schema_builds(kind):
    assert spec.message_class("2.0", kind)().DESCRIPTOR.full_name.endswith(".Experiment")


def test_image_versions_read_the_schema_of_their_toolkit():
    assert {v: catalog.schema_version(v) for v in catalog.VERSIONS} == {
        "2.0": "4.0", "3.21.11": "4.0", "3.22.05": "4.0", "4.0": "4.0", "5.0": "5.0", "6.26.3": "5.0"}


@pytest.mark.parametrize("version", ("3.21.11", "4.0", "5.0"))
def test_sample_specs_parse_and_pass_the_loader_checks(version):
    for net, make in (("ssd", samples.ssd_spec), ("dssd", samples.dssd_spec),
                      ("retinanet", samples.retinanet_spec), ("yolo_v3", samples.yolo_v3_spec),
                      ("yolo_v4", samples.yolo_v4_spec), ("yolo_v4_tiny", samples.yolo_v4_tiny_spec)):
        exp = spec.parse_text(version, catalog.NETS[net]["schema"], make(TF, "/d"))
        spec.check_detection_experiment(exp, net)
        assert spec.spec_network(exp, net) == net
    spec.check_detectnet_experiment(spec.parse_text(version, "detectnet_v2", samples.detectnet_v2_spec(TF, "/d")))
    spec.parse_text(version, "detectnet_v2_inference", samples.DETECTNET_V2_INFERENCE_SPEC.format(model="/m"))
    spec.check_dataset_export(spec.parse_text(version, "dataset_convert", samples.kitti_convert_spec("/d")))


def test_parsing_merges_like_tao_loaders():
    """TAO loads specs with text_format.Merge: a repeated scalar field keeps the last value."""
    exp = spec.parse_text("5.0", "ssd", "random_seed: 1\nrandom_seed: 7\n")
    assert exp.random_seed == 7


@pytest.mark.parametrize("version", REAL)
@pytest.mark.parametrize("net", ["yolo_v3", "yolo_v4", "yolo_v4_tiny"])
def test_yolo_eval_config_has_no_validation_period(version, net):
    """YOLO validates at every checkpoint_interval; its eval_config (the common EvalConfig) has no
    validation_period_during_training. SSD's and RetinaNet's own EvalConfig do."""
    with pytest.raises(spec.SpecError, match='no field named "validation_period_during_training"'):
        spec.parse_text(version, net, "eval_config { validation_period_during_training: 1 }")
    for kind in ("ssd", "retinanet"):
        spec.parse_text(version, kind, "eval_config { validation_period_during_training: 1 }")
    # TLT 2.0's YOLOv3 layout had it
    spec.parse_text("2.0", "yolo_tlt2", "eval_config { validation_period_during_training: 1 }")


FACE_MASK = Path(__file__).resolve().parents[3] / "shared" / "face-mask-detection" / "tlt_specs"
FACE_MASK_KINDS = {"inference": "detectnet_v2_inference", "tfrecords": "dataset_convert", "train": "detectnet_v2"}


def test_nvidia_tlt2_specs_parse_in_the_tlt2_image():
    """NVIDIA's own TLT 2.0 DetectNet_v2 specs (the face-mask tutorial; shared/ beside the clone) are
    the evidence for tf-2.0: TAO 4.0's messages plus TLT 2.0's per-class confidence_threshold."""
    if not FACE_MASK.is_dir():
        pytest.skip(f"{FACE_MASK} (NVIDIA's TLT 2.0 specs) is not here")
    for path in sorted(FACE_MASK.glob("*.txt")):
        kind = next(k for word, k in FACE_MASK_KINDS.items() if word in path.name)
        msg = spec.parse_text("2.0", kind, path.read_text(encoding="utf-8"))
        if kind == "detectnet_v2":
            spec.check_detectnet_experiment(msg)
    per_class = 'bbox_handler_config { classwise_bbox_handler_config { key: "a" value { confidence_threshold: 0.9 } } }'
    assert spec.parse_text("2.0", "detectnet_v2_inference", per_class)
    for version in REAL:  # TAO 4.0 dropped it
        with pytest.raises(spec.SpecError, match="confidence_threshold"):
            spec.parse_text(version, "detectnet_v2_inference", per_class)


def test_dbscan_min_samples_is_a_float_in_4_0_and_an_int_in_5_0():
    text = 'postprocessing_config { target_class_config { key: "car" value { clustering_config { dbscan_min_samples: 0.05 } } } }'
    assert spec.parse_text("4.0", "detectnet_v2", text)  # NVIDIA's TLT 2.0 specs write 0.05
    spec.parse_text("2.0", "detectnet_v2", text)
    with pytest.raises(spec.SpecError, match="dbscan_min_samples|integer"):
        spec.parse_text("5.0", "detectnet_v2", text)
    spec.parse_text("5.0", "detectnet_v2", text.replace("0.05", "3"))


@pytest.mark.parametrize("version", REAL)
def test_freeze_blocks_types(version):
    """YOLOv4's and RetinaNet's freeze_blocks are repeated floats, SSD's repeated uint32."""
    spec.parse_text(version, "yolo_v4", "yolov4_config { freeze_blocks: 0.5 }")
    spec.parse_text(version, "retinanet", "retinanet_config { freeze_blocks: 0.5 }")
    with pytest.raises(spec.SpecError):
        spec.parse_text(version, "ssd", "ssd_config { freeze_blocks: 0.5 }")


@pytest.mark.parametrize("version", REAL)
def test_ssd_dataset_has_no_validation_fold(version):
    """SSD/DSSD/RetinaNet validate on validation_data_sources only; YOLO also has validation_fold."""
    for kind in ("ssd", "retinanet"):
        with pytest.raises(spec.SpecError, match='no field named "validation_fold"'):
            spec.parse_text(version, kind, "dataset_config { validation_fold: 0 }")
    spec.parse_text(version, "yolo_v4", "dataset_config { validation_fold: 0 }")


TLT2_CASES = [("ssd", "ssd_tlt2", "ssd", samples.ssd_spec, "ssd_config"),
              ("dssd", "ssd_tlt2", "dssd", samples.dssd_spec, "dssd_config"),
              ("retinanet", "retinanet_tlt2", "retinanet", samples.retinanet_spec, "retinanet_config"),
              ("yolo_v3", "yolo_tlt2", "yolo_v3", samples.yolo_v3_spec, "yolo_config")]


@pytest.mark.parametrize("net, tlt2, tao3, make, field", TLT2_CASES, ids=[c[0] for c in TLT2_CASES])
def test_tlt2_layout_is_required_in_2_0_and_rejected_later(net, tlt2, tao3, make, field):
    assert catalog.net_info(net, "2.0")["schema"] == tlt2 and catalog.net_info(net, "3.21.11")["schema"] == tao3
    old_text, new_text = samples.tlt2_spec(make(TF, "/d")), make(TF, "/d")
    exp = spec.parse_text("2.0", tlt2, old_text)
    spec.check_detection_experiment(exp, net)
    assert spec.config_field(exp, net) == field
    assert spec.input_shape(exp) == (3, 320, 320) and spec.tlt2_layout(exp)
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text("2.0", tlt2, new_text)
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text("3.21.11", tao3, old_text)
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text("2.0", tlt2, old_text.replace("validation_fold: 0",
                                                      'validation_data_sources { label_directory_path: "/v" }'))
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text("2.0", tlt2, old_text.replace("validation_fold: 0", "include_difficult_in_training: true"))
    spec.parse_text("2.0", tlt2, old_text.replace(
        "validation_fold: 0", 'validation_data_source { tfrecords_path: "/v*" image_directory_path: "/v" }'))
    if net == "yolo_v3":
        with pytest.raises(spec.SpecError, match='no field named "yolov3_config"'):
            spec.parse_text("2.0", tlt2, old_text.replace("yolo_config {", "yolov3_config {"))


def test_unknown_field_is_rejected_with_its_name():
    with pytest.raises(spec.SpecError, match='has no field named "two_boxes_for_ar2"'):
        spec.parse_text("5.0", "ssd", "ssd_config { two_boxes_for_ar2: true }")


def test_wrong_enum_value_is_rejected():
    with pytest.raises(spec.SpecError, match="L3"):
        spec.parse_text("4.0", "ssd", "training_config { regularizer { type: L3 } }")


@pytest.mark.parametrize("old,new,message", [
    ("soft_start: 0.15", "soft_start: 1.5", "soft_start"),
    ("annealing: 0.8", "annealing: 0.0", "annealing"),
    ("confidence_threshold: 0.01", "confidence_threshold: 1.0", "confidence_threshold"),
    ("clustering_iou_threshold: 0.6", "clustering_iou_threshold: 0", "clustering_iou_threshold"),
    ("matching_iou_threshold: 0.5", "matching_iou_threshold: 1.5", "matching_iou_threshold"),
    ("output_width: 320", "output_width: 32", "> 32"),
    ('variances: "[0.1, 0.1, 0.2, 0.2]"', 'variances: "[0.1, 0.1, 0.2]"', "4 floats"),
])
def test_ssd_loader_checks(old, new, message):
    text = samples.ssd_spec(TF, "/d")
    assert old in text
    exp = spec.parse_text("5.0", "ssd", text.replace(old, new))
    with pytest.raises(spec.SpecError, match=message):
        spec.check_detection_experiment(exp, "ssd")


def test_missing_message_is_rejected():
    text = samples.ssd_spec(TF, "/d")
    start = text.index("nms_config {")
    end = text.index("}", start) + 1
    exp = spec.parse_text("5.0", "ssd", text[:start] + text[end:])
    with pytest.raises(spec.SpecError, match="nms_config"):
        spec.check_detection_experiment(exp, "ssd")


def test_ssd_and_dssd_are_one_command_and_the_spec_decides():
    """NVIDIA installs `dssd` as the `ssd` entrypoint: dssd_config trains DSSD under either name."""
    exp = spec.parse_text("5.0", "dssd", samples.dssd_spec(TF, "/d"))
    assert spec.spec_network(exp, "ssd") == spec.spec_network(exp, "dssd") == "dssd"
    exp = spec.parse_text("5.0", "ssd", samples.ssd_spec(TF, "/d"))
    assert spec.spec_network(exp, "dssd") == "ssd"
    with pytest.raises(spec.SpecError, match="Network config missing"):
        spec.check_detection_experiment(spec.parse_text("5.0", "ssd", "random_seed: 1"), "dssd")


def test_yolo_anchor_shapes_and_multiple_of_32():
    text = samples.yolo_v4_spec(TF, "/d")
    with pytest.raises(spec.SpecError, match="multiple"):
        spec.check_detection_experiment(
            spec.parse_text("5.0", "yolo_v4", text.replace("output_width: 320", "output_width: 300")), "yolo_v4")
    bad = text.replace('big_anchor_shape: "[(114.94', 'big_anchor_shape: "[(x114.94')
    with pytest.raises(spec.SpecError, match="big_anchor_shape"):
        spec.check_detection_experiment(spec.parse_text("5.0", "yolo_v4", bad), "yolo_v4")


def test_yolo_v4_tiny_refuses_small_anchors():
    text = samples.yolo_v4_tiny_spec(TF, "/d")
    spec.check_detection_experiment(spec.parse_text("5.0", "yolo_v4", text), "yolo_v4")
    with_small = text.replace("  mid_anchor_shape", '  small_anchor_shape: "[(15.60, 13.88)]"\n  mid_anchor_shape')
    with pytest.raises(spec.SpecError, match="small_anchor_shape"):
        spec.check_detection_experiment(spec.parse_text("5.0", "yolo_v4_tiny", with_small), "yolo_v4_tiny")


@pytest.mark.parametrize("old,new,message", [
    ("mosaic_min_ratio: 0.2", "mosaic_min_ratio: 0.0", "mosaic_min_ratio"),
    ("matching_neutral_box_iou: 0.5", "matching_neutral_box_iou: 0.2", "matching_neutral_box_iou"),
    ("saturation: 1.5", "saturation: 0.5", "saturation"),
    ("checkpoint_interval: 2", "checkpoint_interval: 0", "checkpoint_interval"),
    ('image_extension: "png"', "", "image_extension"),
])
def test_yolo_v4_loader_bounds(old, new, message):
    text = samples.yolo_v4_spec(TF, "/d")
    assert old in text
    exp = spec.parse_text("4.0", "yolo_v4", text.replace(old, new))
    with pytest.raises(spec.SpecError, match=message):
        spec.check_detection_experiment(exp, "yolo_v4")


def test_detectnet_resolution_must_be_multiple_of_16():
    text = samples.detectnet_v2_spec(TF, "/d").replace("output_image_width: 320", "output_image_width: 330")
    with pytest.raises(spec.SpecError, match="multiples of 16"):
        spec.check_detectnet_experiment(spec.parse_text("5.0", "detectnet_v2", text))


def test_detectnet_classes_need_cost_function_entries():
    text = samples.detectnet_v2_spec(TF, "/d").replace('target_class_mapping { key: "person" value: "person" }',
                                                       'target_class_mapping { key: "person" value: "rider" }')
    with pytest.raises(spec.SpecError, match="rider"):
        spec.check_detectnet_experiment(spec.parse_text("4.0", "detectnet_v2", text))


def test_kitti_config_fields():
    msg = spec.parse_text("5.0", "dataset_convert", samples.kitti_convert_spec("/d", val_split=0))
    assert msg.kitti_config.image_extension == ".png" and msg.kitti_config.val_split == 0
    with pytest.raises(spec.SpecError, match="validation_split"):
        spec.parse_text("5.0", "dataset_convert", "kitti_config { validation_split: 3 }")


def test_encrypted_model_needs_the_right_key(tmp_path):
    path = str(tmp_path / "m.tlt")
    modelio.save_model(path, {"network": "ssd", "skill": 0.5}, "k1")
    assert modelio.load_model(path, "k1")["network"] == "ssd"
    for key in ("k2", None):
        with pytest.raises(TaskFailed, match="The key used to load the model is incorrect"):
            modelio.load_model(path, key)


def test_plain_hdf5_and_etlt_layout(tmp_path):
    h5 = str(tmp_path / "m.hdf5")
    modelio.save_model(h5, {"network": "ssd"}, None)
    assert open(h5, "rb").read(8) == modelio.HDF5_SIGNATURE
    etlt = str(tmp_path / "m.etlt")
    modelio.save_etlt(etlt, {"network": "ssd"}, "k", None)
    raw = open(etlt, "rb").read()
    assert raw[:4] == b"\0\0\0\0"
    assert modelio.load_etlt(etlt, "k") == (None, {"network": "ssd"})


def test_artifact_names():
    assert catalog.model_stem("ssd", "resnet", 18) == "ssd_resnet18"
    assert catalog.model_stem("ssd", "mobilenet_v2", 0) == "ssd_mobilenet_v2"
    assert catalog.model_stem("yolo_v4_tiny", "cspdarknet_tiny", 0) == "yolov4_cspdarknet_tiny"
    assert catalog.model_stem("yolo_v4", "cspdarknet", 19) == "yolov4_cspdarknet19"
    assert "converter" in catalog.commands("4.0", "tf") and "converter" not in catalog.commands("5.0", "tf")
    assert catalog.commands("2.0", "tf")[0].startswith("tlt-")
