"""The TAO spec-file schema per toolkit, as tltpipe's own data, turned into protobuf descriptors.

TAO 4.0 (which also judges TAO 3.21.11 and 3.22.05) and TAO 5.x: the tables in schemas/tao-<v>.json,
generated from NVIDIA's own messages (tests/reference/schema_table.py) and checked against them by
the conformance tests. TLT 2.0 has no public source: its messages are written below from NVIDIA's
TLT 2.0 specs and commands.

A table holds, per spec kind (a network's experiment, "detectnet_v2_inference", "dataset_convert"),
the root message and every message and enum reachable from it: {message: [[field, type, label,
oneof], ...]}, where type is a scalar name, "enum:<Enum>", "map<K,V>" or a message name, and label is
"repeated" or "". Each kind becomes a proto3 file without a package, like TAO's own, in a pool of its
own, so google.protobuf.text_format rejects unknown fields, wrong types and two members of a oneof
exactly as the containers do, with the same message names in its errors.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

R = "repeated"
O = ""
# The largest values of the protobuf scalars TAO's spec fields use: a value past them is refused where it is
# written (a config key, a spec override), never left for protobuf to fail on or turn into inf.
UINT32_MAX = 2**32 - 1
INT32_MAX = 2**31 - 1
FLOAT32_MAX = 3.4028234663852886e38


def _f(name: str, type_: str, label: str = O, oneof: str | None = None) -> tuple[str, str, str, str | None]:
    return (name, type_, label, oneof)


def _msg(*fields, enums: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"fields": list(fields), "enums": enums or {}}


# --- TLT 2.0: shared pieces ---------------------------------------------------------------------------
_COMMON = {
    "StringMapEntry": _msg(_f("key", "string"), _f("value", "string")),
    "FloatMapEntry": _msg(_f("key", "string"), _f("value", "float")),
    "SoftStartAnnealingSchedule": _msg(
        _f("min_learning_rate", "float"), _f("max_learning_rate", "float"),
        _f("soft_start", "float"), _f("annealing", "float"),
    ),
    "SoftStartCosineAnnealingSchedule": _msg(
        _f("max_learning_rate", "float"), _f("soft_start", "float"), _f("min_learning_rate", "float"),
    ),
    "LearningRate": _msg(
        _f("soft_start_annealing_schedule", "SoftStartAnnealingSchedule", oneof="learning_rate"),
        _f("soft_start_cosine_annealing_schedule", "SoftStartCosineAnnealingSchedule", oneof="learning_rate"),
    ),
    "AdamOptimizer": _msg(_f("epsilon", "float"), _f("beta1", "float"), _f("beta2", "float"), _f("amsgrad", "bool")),
    "SgdOptimizer": _msg(_f("momentum", "float"), _f("nesterov", "bool")),
    "RmspropOptimizer": _msg(_f("rho", "float"), _f("momentum", "float"), _f("epsilon", "float"),
                             _f("centered", "bool")),
    "Optimizer": _msg(
        _f("adam", "AdamOptimizer", oneof="optimizer"), _f("sgd", "SgdOptimizer", oneof="optimizer"),
        _f("rmsprop", "RmspropOptimizer", oneof="optimizer"),
    ),
    "Regularizer": _msg(_f("type", "enum:Type"), _f("weight", "float"), enums={"Type": ["NO_REG", "L1", "L2"]}),
    "DataSource": _msg(
        _f("tfrecords_path", "string"), _f("label_directory_path", "string"),
        _f("image_directory_path", "string"), _f("root_path", "string"), _f("source_weight", "float"),
    ),
    "TrainingConfig": _msg(
        _f("batch_size_per_gpu", "uint32"), _f("num_epochs", "uint32"), _f("enable_qat", "bool"),
        _f("learning_rate", "LearningRate"), _f("regularizer", "Regularizer"), _f("optimizer", "Optimizer"),
        _f("checkpoint_interval", "uint32"), _f("n_workers", "uint32"), _f("max_queue_size", "uint32"),
        _f("use_multiprocessing", "bool"),
        _f("pretrain_model_path", "string", oneof="load_model"),
        _f("resume_model_path", "string", oneof="load_model"),
        _f("pruned_model_path", "string", oneof="load_model"),
    ),
    "EvalConfig": _msg(
        _f("validation_period_during_training", "uint32"),
        _f("average_precision_mode", "enum:ApMode"), _f("batch_size", "uint32"),
        _f("matching_iou_threshold", "float"), _f("visualize_pr_curve", "bool"),
        enums={"ApMode": ["SAMPLE", "INTEGRATE"]},
    ),
    "NmsConfig": _msg(
        _f("confidence_threshold", "float"), _f("clustering_iou_threshold", "float"), _f("top_k", "uint32"),
        _f("infer_nms_score_bits", "uint32"), _f("force_on_cpu", "bool"),
    ),
}

# --- SSD / DSSD / RetinaNet ------------------------------------------------------------------
_SSD_ANCHORS = (
    _f("aspect_ratios", "string"), _f("aspect_ratios_global", "string"), _f("two_boxes_for_ar1", "bool"),
    _f("clip_boxes", "bool"), _f("variances", "string"), _f("scales", "string"),
    _f("min_scale", "float"), _f("max_scale", "float"), _f("steps", "string"), _f("offsets", "string"),
    _f("arch", "string"), _f("nlayers", "uint32"), _f("freeze_bn", "bool"), _f("freeze_blocks", "uint32", R),
)
_SSD = {
    "SsdConfig": _msg(*_SSD_ANCHORS),
    "DssdConfig": _msg(*_SSD_ANCHORS, _f("pred_num_channels", "uint32")),
}

# --- dataset_convert (KITTI) -----------------------------------------------------------------
_CONVERT = {
    "KittiConfig": _msg(
        _f("root_directory_path", "string"), _f("image_dir_name", "string"), _f("label_dir_name", "string"),
        _f("point_clouds_dir", "string"), _f("calibrations_dir", "string"),
        _f("kitti_sequence_to_frames_file", "string"), _f("image_extension", "string"),
        _f("num_partitions", "uint32"), _f("num_shards", "uint32"), _f("partition_mode", "string"),
        _f("val_split", "float"),
    ),
    "DatasetExportConfig": _msg(
        _f("kitti_config", "KittiConfig"), _f("image_directory_path", "string"),
        _f("target_class_mapping", "StringMapEntry", R),
    ),
}

# --- RetinaNet ----------------------------------------------------------------------------------
_RETINANET = {
    "RetinanetConfig": _msg(
        *_SSD_ANCHORS, _f("loss_loc_weight", "float"), _f("focal_loss_alpha", "float"),
        _f("focal_loss_gamma", "float"), _f("n_kernels", "uint32"), _f("feature_size", "uint32"),
        _f("pos_iou_thresh", "float"), _f("neg_iou_thresh", "float"), _f("n_anchor_levels", "uint32"),
        _f("all_projections", "bool"),
    ),
}

# --- YOLOv3 / YOLOv4 / YOLOv4-tiny --------------------------------------------------------------
_YOLO_COMMON = (
    _f("big_anchor_shape", "string"), _f("mid_anchor_shape", "string"), _f("small_anchor_shape", "string"),
    _f("matching_neutral_box_iou", "float"), _f("arch", "string"), _f("nlayers", "uint32"),
    _f("arch_conv_blocks", "uint32"), _f("loss_loc_weight", "float"), _f("loss_neg_obj_weights", "float"),
    _f("loss_class_weights", "float"), _f("freeze_blocks", "uint32", R), _f("freeze_bn", "bool"),
)

# --- DetectNet_v2 ------------------------------------------------------------------------------
_CLUSTERING = {
    "ClusteringConfig": _msg(
        _f("coverage_threshold", "float"), _f("dbscan_eps", "float"), _f("dbscan_min_samples", "float"),
        _f("minimum_bounding_box_height", "int32"), _f("clustering_algorithm", "enum:Algorithm"),
        _f("nms_iou_threshold", "float"), _f("nms_confidence_threshold", "float"),
        _f("dbscan_confidence_threshold", "float"),
        enums={"Algorithm": ["DBSCAN", "NMS", "HYBRID"]},
    ),
}
_DETECTNET = {
    **_CLUSTERING,
    "DetectnetDataSource": _msg(
        _f("tfrecords_path", "string"), _f("image_directory_path", "string"), _f("source_weight", "float"),
    ),
    "DetectnetDataset": _msg(
        _f("data_sources", "DetectnetDataSource", R), _f("image_extension", "string"),
        _f("target_class_mapping", "StringMapEntry", R),
        _f("validation_fold", "uint32", oneof="dataset_split_type"),
        _f("validation_data_source", "DetectnetDataSource", oneof="dataset_split_type"),
    ),
    "Preprocessing": _msg(
        _f("output_image_width", "uint32"), _f("output_image_height", "uint32"),
        _f("output_image_channel", "uint32"), _f("output_image_min", "uint32"), _f("output_image_max", "uint32"),
        _f("crop_left", "uint32"), _f("crop_top", "uint32"), _f("crop_right", "uint32"),
        _f("crop_bottom", "uint32"), _f("min_bbox_width", "float"), _f("min_bbox_height", "float"),
        _f("scale_width", "float"), _f("scale_height", "float"), _f("enable_auto_resize", "bool"),
    ),
    "SpatialAugmentation": _msg(
        _f("hflip_probability", "float"), _f("vflip_probability", "float"), _f("zoom_min", "float"),
        _f("zoom_max", "float"), _f("translate_max_x", "float"), _f("translate_max_y", "float"),
        _f("rotate_rad_max", "float"), _f("rotate_probability", "float"),
    ),
    "ColorAugmentation": _msg(
        _f("color_shift_stddev", "float"), _f("hue_rotation_max", "float"), _f("saturation_shift_max", "float"),
        _f("contrast_scale_max", "float"), _f("contrast_center", "float"),
    ),
    "DetectnetAugmentation": _msg(
        _f("preprocessing", "Preprocessing"), _f("spatial_augmentation", "SpatialAugmentation"),
        _f("color_augmentation", "ColorAugmentation"),
    ),
    "TargetClassPostprocessing": _msg(_f("clustering_config", "ClusteringConfig")),
    "TargetClassPostprocessingEntry": _msg(_f("key", "string"), _f("value", "TargetClassPostprocessing")),
    "PostprocessingConfig": _msg(_f("target_class_config", "TargetClassPostprocessingEntry", R)),
    "BboxObjective": _msg(_f("input", "string"), _f("scale", "float"), _f("offset", "float")),
    "CovObjective": _msg(_f("input", "string")),
    "ObjectiveSet": _msg(_f("bbox", "BboxObjective"), _f("cov", "CovObjective")),
    "TrainingPrecision": _msg(_f("backend_floatx", "enum:Floatx"), enums={"Floatx": ["FLOAT32", "FLOAT16", "INVALID"]}),
    "DetectnetModelConfig": _msg(
        _f("pretrained_model_file", "string"), _f("load_graph", "bool"), _f("num_layers", "uint32"),
        _f("use_pooling", "bool"), _f("use_batch_norm", "bool"), _f("dropout_rate", "float"),
        _f("objective_set", "ObjectiveSet"), _f("training_precision", "TrainingPrecision"), _f("arch", "string"),
        _f("freeze_blocks", "uint32", R), _f("freeze_bn", "bool"), _f("all_projections", "bool"),
    ),
    "EvaluationBoxConfig": _msg(
        _f("minimum_height", "int32"), _f("maximum_height", "int32"), _f("minimum_width", "int32"),
        _f("maximum_width", "int32"),
    ),
    "EvaluationBoxConfigEntry": _msg(_f("key", "string"), _f("value", "EvaluationBoxConfig")),
    "EvaluationConfig": _msg(
        _f("validation_period_during_training", "uint32"), _f("first_validation_epoch", "uint32"),
        _f("minimum_detection_ground_truth_overlap", "FloatMapEntry", R),
        _f("evaluation_box_config", "EvaluationBoxConfigEntry", R), _f("average_precision_mode", "enum:ApMode"),
        enums={"ApMode": ["SAMPLE", "INTEGRATE"]},
    ),
    "CostObjective": _msg(_f("name", "string"), _f("initial_weight", "float"), _f("weight_target", "float")),
    "CostTargetClass": _msg(
        _f("name", "string"), _f("class_weight", "float"), _f("coverage_foreground_weight", "float"),
        _f("objectives", "CostObjective", R),
    ),
    "CostFunctionConfig": _msg(
        _f("target_classes", "CostTargetClass", R), _f("enable_autoweighting", "bool"),
        _f("max_objective_weight", "float"), _f("min_objective_weight", "float"),
    ),
    "CostScaling": _msg(
        _f("enabled", "bool"), _f("initial_exponent", "double"), _f("increment", "double"),
        _f("decrement", "double"),
    ),
    "DetectnetTrainingConfig": _msg(
        _f("batch_size_per_gpu", "uint32"), _f("num_epochs", "uint32"), _f("learning_rate", "LearningRate"),
        _f("regularizer", "Regularizer"), _f("optimizer", "Optimizer"), _f("cost_scaling", "CostScaling"),
        _f("checkpoint_interval", "uint32"), _f("enable_qat", "bool"),
        _f("max_queue_size", "uint32"), _f("n_workers", "uint32"), _f("use_multiprocessing", "bool"),
    ),
    "BboxRasterizerTargetClass": _msg(
        _f("cov_center_x", "float"), _f("cov_center_y", "float"), _f("cov_radius_x", "float"),
        _f("cov_radius_y", "float"), _f("bbox_min_radius", "float"),
    ),
    "BboxRasterizerTargetClassEntry": _msg(_f("key", "string"), _f("value", "BboxRasterizerTargetClass")),
    "BboxRasterizerConfig": _msg(
        _f("target_class_config", "BboxRasterizerTargetClassEntry", R), _f("deadzone_radius", "float"),
    ),
    "DetectnetExperiment": _msg(
        _f("random_seed", "uint32"), _f("dataset_config", "DetectnetDataset"),
        _f("augmentation_config", "DetectnetAugmentation"), _f("postprocessing_config", "PostprocessingConfig"),
        _f("model_config", "DetectnetModelConfig"), _f("evaluation_config", "EvaluationConfig"),
        _f("cost_function_config", "CostFunctionConfig"), _f("training_config", "DetectnetTrainingConfig"),
        _f("bbox_rasterizer_config", "BboxRasterizerConfig"),
    ),
    # `detectnet_v2 inference` (TF images) reads its own spec.
    "TltModelConfig": _msg(_f("model", "string")),
    "CalibratorConfig": _msg(_f("calibration_cache", "string"), _f("calibration_tensorfile", "string"),
                             _f("n_batches", "int32")),
    "TensorRTConfig": _msg(
        _f("parser", "enum:Parser"), _f("caffemodel", "string"), _f("prototxt", "string"), _f("uff_model", "string"),
        _f("etlt_model", "string"), _f("backend_data_type", "enum:BackendDataType"), _f("save_engine", "bool"),
        _f("trt_engine", "string"), _f("calibrator_config", "CalibratorConfig"),
        enums={"Parser": ["CAFFE", "UFF", "ETLT"], "BackendDataType": ["FP32", "FP16", "INT8"]},
    ),
    "InferencerConfig": _msg(
        _f("target_classes", "string", R), _f("image_width", "uint32"), _f("image_height", "uint32"),
        _f("image_channels", "uint32"), _f("batch_size", "uint32"), _f("gpu_index", "uint32"),
        _f("stride", "uint32"), _f("input_nodes", "string", R), _f("output_nodes", "string", R),
        _f("tlt_config", "TltModelConfig", oneof="model_config_type"),
        _f("tensorrt_config", "TensorRTConfig", oneof="model_config_type"),
    ),
    "BboxColor": _msg(_f("R", "int32"), _f("G", "int32"), _f("B", "int32")),
    # NVIDIA's TLT 2.0 inference specs set confidence_threshold per class (TAO 4.0 dropped it).
    "BboxHandlerClassConfig": _msg(
        _f("confidence_model", "string"), _f("output_map", "string"), _f("confidence_threshold", "float"),
        _f("bbox_color", "BboxColor"), _f("clustering_config", "ClusteringConfig"),
    ),
    "BboxHandlerClassConfigEntry": _msg(_f("key", "string"), _f("value", "BboxHandlerClassConfig")),
    "BboxHandlerConfig": _msg(
        _f("kitti_dump", "bool"), _f("disable_overlay", "bool"), _f("overlay_linewidth", "int32"),
        _f("classwise_bbox_handler_config", "BboxHandlerClassConfigEntry", R),
        _f("postproc_classes", "string", R),
    ),
    "DetectnetInferenceSpec": _msg(
        _f("inferencer_config", "InferencerConfig"), _f("bbox_handler_config", "BboxHandlerConfig"),
    ),
}

# --- TLT 2.0 layout of SSD / DSSD / RetinaNet / YOLOv3 -------------------------------------------
# TLT 2.0 gave these networks DetectNet_v2's dataset_config (TFRecords for training and validation)
# and augmentation_config (preprocessing / spatial / color); YOLOv3's block was yolo_config.
def _tlt2_experiment(*network_fields) -> dict[str, Any]:
    return _msg(
        _f("random_seed", "uint32"), *network_fields, _f("training_config", "TrainingConfig"),
        _f("eval_config", "EvalConfig"), _f("nms_config", "NmsConfig"),
        _f("augmentation_config", "DetectnetAugmentation"), _f("dataset_config", "DetectnetDataset"),
    )


_TLT2 = {
    "Tlt2YoloConfig": _msg(*_YOLO_COMMON),
    "Tlt2SsdExperiment": _tlt2_experiment(_f("ssd_config", "SsdConfig", oneof="network"),
                                          _f("dssd_config", "DssdConfig", oneof="network")),
    "Tlt2RetinanetExperiment": _tlt2_experiment(_f("retinanet_config", "RetinanetConfig"),
                                                _f("class_weighting", "FloatMapEntry", R)),
    "Tlt2YoloExperiment": _tlt2_experiment(_f("yolo_config", "Tlt2YoloConfig")),
}

_TLT2_MESSAGES: dict[str, dict[str, Any]] = {**_COMMON, **_SSD, **_RETINANET, **_DETECTNET, **_CONVERT, **_TLT2}


# TLT 2.0's root message of each spec kind it has.
_TLT2_ROOTS = {
    "ssd": "Tlt2SsdExperiment", "dssd": "Tlt2SsdExperiment", "retinanet": "Tlt2RetinanetExperiment",
    "yolo_v3": "Tlt2YoloExperiment", "detectnet_v2": "DetectnetExperiment",
    "detectnet_v2_inference": "DetectnetInferenceSpec", "dataset_convert": "DatasetExportConfig",
}


def _tlt2_table() -> dict[str, Any]:
    """The TLT 2.0 messages in the table form of schemas/*.json (every message in every kind)."""
    messages: dict[str, list] = {}
    enums: dict[str, list] = {}
    for name, definition in _TLT2_MESSAGES.items():
        for enum, values in definition["enums"].items():
            enums[f"{name}.{enum}"] = [[value, number] for number, value in enumerate(values)]
        messages[name] = [[field, f"enum:{name}.{type_[5:]}" if type_.startswith("enum:") else type_, label, oneof]
                          for field, type_, label, oneof in definition["fields"]]
    return {"schema": "2.0", "kinds": {kind: {"root": root, "messages": messages, "enums": enums}
                                       for kind, root in _TLT2_ROOTS.items()}}


@cache
def table(schema: str) -> dict[str, Any]:
    """The schema table of one toolkit schema ("2.0", "4.0", "5.0")."""
    if schema == "2.0":
        return _tlt2_table()
    text = resources.files("tlt_pipe").joinpath("schemas", f"tao-{schema}.json").read_text(encoding="utf-8")
    return json.loads(text)


_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "sint32": descriptor_pb2.FieldDescriptorProto.TYPE_SINT32,
    "sint64": descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}
_LABEL = descriptor_pb2.FieldDescriptorProto


def _set_type(field: descriptor_pb2.FieldDescriptorProto, type_: str) -> None:
    if type_ in _SCALARS:
        field.type = _SCALARS[type_]
    elif type_.startswith("enum:"):
        field.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
        field.type_name = "." + type_[5:]
    else:
        field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
        field.type_name = "." + type_


def _file_proto(schema: str, kind: str, definition: dict[str, Any]) -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=f"tltpipe/tao-{schema}/{kind}.proto", syntax="proto3")
    protos: dict[str, descriptor_pb2.DescriptorProto] = {}
    for name in sorted(definition["messages"], key=lambda n: n.count(".")):  # outer messages first
        outer, _, short = name.rpartition(".")
        protos[name] = (protos[outer].nested_type if outer else fdp.message_type).add(name=short)
    for name, values in definition["enums"].items():
        outer, _, short = name.rpartition(".")
        enum = (protos[outer].enum_type if outer else fdp.enum_type).add(name=short)
        for value, number in values:
            enum.value.add(name=value, number=number)
    for name, fields in definition["messages"].items():
        proto = protos[name]
        oneofs: list[str] = []
        for number, (field_name, type_, label, oneof) in enumerate(fields, start=1):
            field = proto.field.add(name=field_name, number=number, json_name=field_name)
            field.label = _LABEL.LABEL_REPEATED if label == R else _LABEL.LABEL_OPTIONAL
            if type_.startswith("map<"):
                key, value = type_[4:-1].split(",")
                entry = proto.nested_type.add(name="".join(p.title() for p in field_name.split("_")) + "Entry")
                entry.options.map_entry = True
                for index, (part, part_type) in enumerate((("key", key), ("value", value)), start=1):
                    _set_type(entry.field.add(name=part, number=index, json_name=part,
                                              label=_LABEL.LABEL_OPTIONAL), part_type)
                field.label = _LABEL.LABEL_REPEATED
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f".{name}.{entry.name}"
            else:
                _set_type(field, type_)
            if oneof:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    proto.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs.index(oneof)
    return fdp


def kinds(schema: str) -> tuple[str, ...]:
    """The spec kinds a toolkit schema has."""
    return tuple(table(schema)["kinds"])


@cache
def descriptor(schema: str, kind: str):
    """The root message descriptor of one spec kind in one toolkit schema."""
    definitions = table(schema)["kinds"]
    if kind not in definitions:
        raise KeyError(f"TAO {schema} has no {kind} spec")
    definition = definitions[kind]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_proto(schema, kind, definition))
    return pool.FindMessageTypeByName(definition["root"])


def message_class(schema: str, kind: str):
    """The generated protobuf class of a spec kind's root message."""
    return message_factory.GetMessageClass(descriptor(schema, kind))
