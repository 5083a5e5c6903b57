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
    "Regularizer": _msg(_f("type", "enum:Type"), _f("weight", "float"), enums={"Type": ["NO_REG", "L1", "L2"]}),
    "DataSource": _msg(
        _f("tfrecords_path", "string"), _f("label_directory_path", "string"),
        _f("image_directory_path", "string"), _f("root_path", "string"), _f("source_weight", "float"),
    ),
    "TrainingConfig": _msg(
        _f("batch_size_per_gpu", "uint32"), _f("num_epochs", "uint32"), _f("enable_qat", "bool"),
        _f("learning_rate", "LearningRate"), _f("regularizer", "Regularizer"),
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

MESSAGES: dict[str, dict[str, Any]] = {**_COMMON, **_SSD, **_CONVERT}

_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
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
