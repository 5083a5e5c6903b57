"""Unit tests of the emulator's spec schema and model files (no Docker needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import emu_samples as samples  # noqa: E402
from tao_emulator import catalog, modelio, spec  # noqa: E402
from tao_emulator.runtime import TaskFailed  # noqa: E402

TF = "/r/tfrecords/train"


@pytest.mark.parametrize("schema", sorted(spec._schema.SCHEMAS))
def test_every_schema_builds(schema):
    assert spec.message_class(schema)().DESCRIPTOR.full_name.endswith(spec._schema.SCHEMAS[schema]["root"])


def test_sample_specs_parse_and_pass_the_loader_checks():
    spec.check_detection_experiment(spec.parse_text("ssd", samples.ssd_spec(TF, "/d")), "ssd", "ssd_config")
    spec.check_detection_experiment(spec.parse_text("yolo_v4", samples.yolo_v4_spec(TF, "/d")),
                                    "yolo_v4", "yolov4_config")
    spec.check_detectnet_experiment(spec.parse_text("detectnet_v2", samples.detectnet_v2_spec(TF, "/d")))
    spec.check_dataset_export(spec.parse_text("dataset_export", samples.kitti_convert_spec("/d")))


TLT2_CASES = [("ssd", "ssd_tlt2", "ssd", samples.ssd_spec, "ssd_config"),
              ("dssd", "ssd_tlt2", "ssd", samples.dssd_spec, "dssd_config"),
              ("retinanet", "retinanet_tlt2", "retinanet", samples.retinanet_spec, "retinanet_config"),
              ("yolo_v3", "yolo_tlt2", "yolo_v3", samples.yolo_v3_spec, "yolo_config")]


@pytest.mark.parametrize("net, tlt2, tao3, make, field", TLT2_CASES, ids=[c[0] for c in TLT2_CASES])
def test_tlt2_layout_is_required_in_2_0_and_rejected_later(net, tlt2, tao3, make, field):
    assert catalog.net_info(net, "2.0")["schema"] == tlt2 and catalog.net_info(net, "3.21.11")["schema"] == tao3
    old_text, new_text = samples.tlt2_spec(make(TF, "/d")), make(TF, "/d")
    exp = spec.parse_text(tlt2, old_text)
    spec.check_detection_experiment(exp, net, field)
    assert spec.input_shape(exp) == (3, 320, 320) and spec.tlt2_layout(exp)
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text(tlt2, new_text)
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text(tao3, old_text)
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text(tlt2, old_text.replace("validation_fold: 0",
                                               'validation_data_sources { label_directory_path: "/v" }'))
    with pytest.raises(spec.SpecError, match="has no field named"):
        spec.parse_text(tlt2, old_text.replace("validation_fold: 0", "include_difficult_in_training: true"))
    spec.parse_text(tlt2, old_text.replace("validation_fold: 0",
                                           'validation_data_source { tfrecords_path: "/v*" image_directory_path: "/v" }'))
    if net == "yolo_v3":
        with pytest.raises(spec.SpecError, match='no field named "yolov3_config"'):
            spec.parse_text(tlt2, old_text.replace("yolo_config {", "yolov3_config {"))


def test_unknown_field_is_rejected_with_its_name():
    with pytest.raises(spec.SpecError, match='has no field named "two_boxes_for_ar2"'):
        spec.parse_text("ssd", "ssd_config { two_boxes_for_ar2: true }")


def test_wrong_enum_value_is_rejected():
    with pytest.raises(spec.SpecError, match="L3"):
        spec.parse_text("ssd", "training_config { regularizer { type: L3 } }")


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
    exp = spec.parse_text("ssd", text.replace(old, new))
    with pytest.raises(spec.SpecError, match=message):
        spec.check_detection_experiment(exp, "ssd", "ssd_config")


def test_missing_message_is_rejected():
    text = samples.ssd_spec(TF, "/d")
    start = text.index("nms_config {")
    end = text.index("}", start) + 1
    exp = spec.parse_text("ssd", text[:start] + text[end:])
    with pytest.raises(spec.SpecError, match="nms_config"):
        spec.check_detection_experiment(exp, "ssd", "ssd_config")


def test_dssd_needs_dssd_config():
    exp = spec.parse_text("ssd", samples.ssd_spec(TF, "/d"))
    with pytest.raises(spec.SpecError, match="dssd_config"):
        spec.check_detection_experiment(exp, "dssd", "dssd_config")


def test_yolo_anchor_shapes_and_multiple_of_32():
    text = samples.yolo_v4_spec(TF, "/d")
    with pytest.raises(spec.SpecError, match="multiples of 32"):
        spec.check_detection_experiment(spec.parse_text("yolo_v4", text.replace("output_width: 320", "output_width: 300")),
                                        "yolo_v4", "yolov4_config")
    bad = text.replace('big_anchor_shape: "[(114.94', 'big_anchor_shape: "[(x114.94')
    with pytest.raises(spec.SpecError, match="big_anchor_shape"):
        spec.check_detection_experiment(spec.parse_text("yolo_v4", bad), "yolo_v4", "yolov4_config")


def test_detectnet_resolution_must_be_multiple_of_16():
    text = samples.detectnet_v2_spec(TF, "/d").replace("output_image_width: 320", "output_image_width: 330")
    with pytest.raises(spec.SpecError, match="multiples of 16"):
        spec.check_detectnet_experiment(spec.parse_text("detectnet_v2", text))


def test_detectnet_classes_need_cost_function_entries():
    text = samples.detectnet_v2_spec(TF, "/d").replace('target_class_mapping { key: "person" value: "person" }',
                                                       'target_class_mapping { key: "person" value: "rider" }')
    with pytest.raises(spec.SpecError, match="rider"):
        spec.check_detectnet_experiment(spec.parse_text("detectnet_v2", text))


def test_kitti_config_fields():
    msg = spec.parse_text("dataset_export", samples.kitti_convert_spec("/d", val_split=0))
    assert msg.kitti_config.image_extension == ".png" and msg.kitti_config.val_split == 0
    with pytest.raises(spec.SpecError, match="validation_split"):
        spec.parse_text("dataset_export", "kitti_config { validation_split: 3 }")


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
