"""The TAO spec-file schema, written for tltpipe from the facts of the TAO spec messages.

Messages are plain data: {message: {"fields": [(name, type, label, oneof)], "enums": {...}}}.
`type` is a scalar ("string", "float", "uint32", "int32", "bool"), "enum:<Name>" for an enum
nested in the same message, or another message name. They are turned into real protobuf
descriptors so that google.protobuf.text_format does the parsing: unknown fields, wrong types
and two members of a oneof are rejected exactly as protobuf does inside the TAO containers.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "tltpipe.spec"

R = "repeated"
O = "optional"


def _f(name: str, type_: str, label: str = O, oneof: str | None = None) -> tuple[str, str, str, str | None]:
    return (name, type_, label, oneof)


def _msg(*fields, enums: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"fields": list(fields), "enums": enums or {}}


# --- shared pieces ---------------------------------------------------------------------------
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
        _f("soft_start_annealing_schedule", "SoftStartAnnealingSchedule", oneof="lr"),
        _f("soft_start_cosine_annealing_schedule", "SoftStartCosineAnnealingSchedule", oneof="lr"),
    ),
    "AdamOptimizer": _msg(_f("epsilon", "float"), _f("beta1", "float"), _f("beta2", "float"), _f("amsgrad", "bool")),
    "SgdOptimizer": _msg(_f("momentum", "float"), _f("nesterov", "bool")),
    "RmspropOptimizer": _msg(_f("rho", "float"), _f("momentum", "float"), _f("epsilon", "float"),
                             _f("centered", "bool")),
    "Optimizer": _msg(
        _f("adam", "AdamOptimizer", oneof="optim"), _f("sgd", "SgdOptimizer", oneof="optim"),
        _f("rmsprop", "RmspropOptimizer", oneof="optim"),
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
    "SsdAugmentation": _msg(
        _f("output_width", "uint32"), _f("output_height", "uint32"), _f("output_channel", "uint32"),
        _f("random_crop_min_scale", "float"), _f("random_crop_max_scale", "float"),
        _f("random_crop_min_ar", "float"), _f("random_crop_max_ar", "float"),
        _f("zoom_out_min_scale", "float"), _f("zoom_out_max_scale", "float"),
        _f("brightness", "int32"), _f("contrast", "float"), _f("saturation", "float"), _f("hue", "int32"),
        _f("random_flip", "float"), _f("image_mean", "FloatMapEntry", R),
    ),
    "SsdDataset": _msg(
        _f("data_sources", "DataSource", R), _f("target_class_mapping", "StringMapEntry", R),
        _f("validation_data_sources", "DataSource", R), _f("include_difficult_in_training", "bool"),
        _f("type", "string"), _f("image_extension", "string"), _f("is_monochrome", "bool"),
    ),
    "SsdExperiment": _msg(
        _f("random_seed", "uint32"), _f("ssd_config", "SsdConfig", oneof="network"),
        _f("dssd_config", "DssdConfig", oneof="network"), _f("training_config", "TrainingConfig"),
        _f("eval_config", "EvalConfig"), _f("nms_config", "NmsConfig"),
        _f("augmentation_config", "SsdAugmentation"), _f("dataset_config", "SsdDataset"),
    ),
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

def _detection_experiment(network_field: str, network_message: str, augmentation: str, *extra) -> dict[str, Any]:
    """RetinaNet and YOLO experiments: one network message plus the shared detection messages."""
    return _msg(
        _f("random_seed", "uint32"), _f(network_field, network_message), _f("training_config", "TrainingConfig"),
        _f("eval_config", "EvalConfig"), _f("nms_config", "NmsConfig"),
        _f("augmentation_config", augmentation), _f("dataset_config", "SsdDataset"), *extra,
    )


# --- RetinaNet ----------------------------------------------------------------------------------
_RETINANET = {
    "RetinanetConfig": _msg(
        *_SSD_ANCHORS, _f("loss_loc_weight", "float"), _f("focal_loss_alpha", "float"),
        _f("focal_loss_gamma", "float"), _f("n_kernels", "uint32"), _f("feature_size", "uint32"),
        _f("pos_iou_thresh", "float"), _f("neg_iou_thresh", "float"), _f("n_anchor_levels", "uint32"),
        _f("all_projections", "bool"),
    ),
    "RetinanetExperiment": _detection_experiment("retinanet_config", "RetinanetConfig", "SsdAugmentation",
                                                 _f("class_weighting", "FloatMapEntry", R)),
}

# --- YOLOv3 / YOLOv4 / YOLOv4-tiny --------------------------------------------------------------
_YOLO_COMMON = (
    _f("big_anchor_shape", "string"), _f("mid_anchor_shape", "string"), _f("small_anchor_shape", "string"),
    _f("matching_neutral_box_iou", "float"), _f("arch", "string"), _f("nlayers", "uint32"),
    _f("arch_conv_blocks", "uint32"), _f("loss_loc_weight", "float"), _f("loss_neg_obj_weights", "float"),
    _f("loss_class_weights", "float"), _f("freeze_blocks", "uint32", R), _f("freeze_bn", "bool"),
    _f("force_relu", "bool"),
)
_YOLO = {
    "YoloAugmentation": _msg(
        _f("hue", "float"), _f("saturation", "float"), _f("exposure", "float"), _f("vertical_flip", "float"),
        _f("horizontal_flip", "float"), _f("jitter", "float"), _f("output_width", "uint32"),
        _f("output_height", "uint32"), _f("output_channel", "uint32"),
        _f("randomize_input_shape_period", "uint32"), _f("mosaic_prob", "float"), _f("mosaic_min_ratio", "float"),
        _f("image_mean", "FloatMapEntry", R), _f("output_depth", "uint32"),
    ),
    "Yolov3Config": _msg(*_YOLO_COMMON),
    "Yolov4Config": _msg(
        *_YOLO_COMMON, _f("box_matching_iou", "float"), _f("activation", "string"), _f("label_smoothing", "float"),
        _f("big_grid_xy_extend", "float"), _f("mid_grid_xy_extend", "float"), _f("small_grid_xy_extend", "float"),
    ),
    "Yolov3Experiment": _detection_experiment("yolov3_config", "Yolov3Config", "YoloAugmentation"),
    "Yolov4Experiment": _detection_experiment("yolov4_config", "Yolov4Config", "YoloAugmentation"),
}

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
    "InferencerConfig": _msg(
        _f("target_classes", "string", R), _f("image_width", "uint32"), _f("image_height", "uint32"),
        _f("image_channels", "uint32"), _f("batch_size", "uint32"), _f("gpu_index", "uint32"),
        _f("stride", "uint32"), _f("tlt_config", "TltModelConfig", oneof="model_config_type"),
    ),
    "BboxHandlerClassConfig": _msg(
        _f("confidence_model", "string"), _f("output_map", "string"), _f("clustering_config", "ClusteringConfig"),
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
    "Tlt2YoloConfig": _msg(*(f for f in _YOLO_COMMON if f[0] != "force_relu")),
    "Tlt2SsdExperiment": _tlt2_experiment(_f("ssd_config", "SsdConfig", oneof="network"),
                                          _f("dssd_config", "DssdConfig", oneof="network")),
    "Tlt2RetinanetExperiment": _tlt2_experiment(_f("retinanet_config", "RetinanetConfig"),
                                                _f("class_weighting", "FloatMapEntry", R)),
    "Tlt2YoloExperiment": _tlt2_experiment(_f("yolo_config", "Tlt2YoloConfig")),
}

MESSAGES: dict[str, dict[str, Any]] = {**_COMMON, **_SSD, **_RETINANET, **_YOLO, **_DETECTNET, **_CONVERT,
                                       **_TLT2}

_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
}


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="tltpipe_spec.proto", package=_PACKAGE, syntax="proto2")
    for msg_name, definition in MESSAGES.items():
        mp = fdp.message_type.add(name=msg_name)
        for enum_name, values in definition["enums"].items():
            ep = mp.enum_type.add(name=enum_name)
            for number, value in enumerate(values):
                ep.value.add(name=value, number=number)
        oneofs: list[str] = []
        for number, (name, type_, label, oneof) in enumerate(definition["fields"], start=1):
            fp = mp.field.add(name=name, number=number)
            fp.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if label == R
                        else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if type_ in _SCALARS:
                fp.type = _SCALARS[type_]
            elif type_.startswith("enum:"):
                fp.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
                fp.type_name = f".{_PACKAGE}.{msg_name}.{type_[5:]}"
            else:
                fp.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                fp.type_name = f".{_PACKAGE}.{type_}"
            if oneof:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    mp.oneof_decl.add(name=oneof)
                fp.oneof_index = oneofs.index(oneof)
    return fdp


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_proto())
    return pool


def message_class(name: str):
    """The generated protobuf class for a top-level spec message."""
    descriptor = _pool().FindMessageTypeByName(f"{_PACKAGE}.{name}")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(_pool()).GetPrototype(descriptor)  # protobuf < 4.21
