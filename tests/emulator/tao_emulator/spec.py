"""Protobuf text-format spec parsing with descriptors built from schema.py, plus loader checks."""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, text_format

from . import schema as _schema

_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
}


class SpecError(Exception):
    """The spec file could not be parsed or failed the loader's checks."""


def parse_field_decl(decl: str) -> tuple[str, str, str, str | None]:
    """``"repeated uint32 freeze_blocks"`` -> (label, type, name, oneof)."""
    parts = decl.split()
    label, oneof = "optional", None
    if len(parts) == 3:
        mod = parts[0]
        if mod == "repeated":
            label = "repeated"
        elif mod.startswith("oneof:"):
            oneof = mod.split(":", 1)[1]
        else:
            raise ValueError(f"bad field declaration {decl!r}")
        parts = parts[1:]
    if len(parts) != 2:
        raise ValueError(f"bad field declaration {decl!r}")
    return label, parts[0], parts[1], oneof


def file_descriptor(name: str, definition: dict) -> descriptor_pb2.FileDescriptorProto:
    package = definition["package"]
    messages = definition["messages"]
    fdp = descriptor_pb2.FileDescriptorProto(name=f"tao_emulator/{name}.proto", package=package,
                                             syntax="proto3")
    protos: dict[str, descriptor_pb2.DescriptorProto] = {}
    for msg_name in messages:
        protos[msg_name] = fdp.message_type.add(name=msg_name)
    for enum_full, values in _schema.ENUMS.items():
        owner, enum_name = enum_full.split(".")
        if owner in protos:
            enum = protos[owner].enum_type.add(name=enum_name)
            for number, value in enumerate(values):
                enum.value.add(name=value, number=number)
    for msg_name, fields in messages.items():
        proto = protos[msg_name]
        oneofs: dict[str, int] = {}
        for number, decl in enumerate(fields, start=1):
            label, type_name, field_name, oneof = parse_field_decl(decl)
            field = proto.field.add(name=field_name, number=number, json_name=field_name)
            field.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if label == "repeated"
                           else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            elif type_name in _schema.ENUMS:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
                field.type_name = f".{package}.{type_name}"
            elif type_name in messages:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f".{package}.{type_name}"
            else:
                raise ValueError(f"{name}: unknown type {type_name!r} in {msg_name}")
            if oneof is not None:
                if oneof not in oneofs:
                    oneofs[oneof] = len(proto.oneof_decl)
                    proto.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs[oneof]
    return fdp


def _message_class(desc):
    try:  # protobuf >= 4.x
        from google.protobuf.message_factory import GetMessageClass
    except ImportError:  # protobuf 3.x (Debian bookworm ships 3.21)
        GetMessageClass = None
    if GetMessageClass is not None:
        return GetMessageClass(desc)
    from google.protobuf import message_factory

    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


@functools.lru_cache(maxsize=None)
def message_class(schema_name: str):
    definition = _schema.SCHEMAS[schema_name]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor(schema_name, definition))
    desc = pool.FindMessageTypeByName(f"{definition['package']}.{definition['root']}")
    return _message_class(desc)


def parse_text(schema_name: str, text: str):
    msg = message_class(schema_name)()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise SpecError(f"google.protobuf.text_format.ParseError: {exc}") from None
    return msg


def load(schema_name: str, path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError(f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'") from None
    except IsADirectoryError:
        raise SpecError(f"IsADirectoryError: [Errno 21] Is a directory: '{path}'") from None
    except PermissionError:
        raise SpecError(f"PermissionError: [Errno 13] Permission denied: '{path}'") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"UnicodeDecodeError: {exc}") from None
    return parse_text(schema_name, text)


def mapping(entries) -> dict:
    """Repeated key/value entries -> dict (last one wins, like a proto map)."""
    return {e.key: e.value for e in entries}


# ---------------------------------------------------------------------------------------------
# loader checks


def _open01(value: float) -> bool:
    return 0.0 < value < 1.0


def parse_float_list(text: str, what: str) -> list[float]:
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    try:
        return [float(x) for x in body.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise SpecError(f"ValueError: could not parse {what}: {text!r}") from None


def parse_anchor_shape(text: str, what: str) -> list[tuple[float, float]]:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise SpecError(f"ValueError: {what} must look like \"[(w, h), ...]\", got {text!r}")
    anchors = []
    for chunk in body[1:-1].split(")"):
        chunk = chunk.strip().lstrip(",").strip()
        if not chunk:
            continue
        if not chunk.startswith("("):
            raise SpecError(f"ValueError: malformed {what}: {text!r}")
        nums = parse_float_list(chunk[1:], what)
        if len(nums) != 2 or min(nums) <= 0:
            raise SpecError(f"ValueError: malformed {what}: {text!r}")
        anchors.append((nums[0], nums[1]))
    if not anchors:
        raise SpecError(f"ValueError: {what} is empty")
    return anchors


def tlt2_layout(exp) -> bool:
    """Whether an experiment uses DetectNet_v2's augmentation message (TLT 2.0 layout)."""
    return "preprocessing" in exp.augmentation_config.DESCRIPTOR.fields_by_name


def input_shape(exp) -> tuple[int, int, int]:
    """(channels, height, width) the experiment trains at."""
    if tlt2_layout(exp):
        pre = exp.augmentation_config.preprocessing
        return pre.output_image_channel, pre.output_image_height, pre.output_image_width
    aug = exp.augmentation_config
    return aug.output_channel, aug.output_height, aug.output_width


def check_training_config(tc, net_title: str) -> None:
    if tc.num_epochs <= 0:
        raise SpecError("ValueError: training_config.num_epochs must be > 0")
    if tc.batch_size_per_gpu <= 0:
        raise SpecError("ValueError: training_config.batch_size_per_gpu must be > 0")
    which = tc.learning_rate.WhichOneof("learning_rate")
    if which is None:
        raise SpecError("ValueError: training_config.learning_rate is not set")
    sched = getattr(tc.learning_rate, which)
    if not _open01(sched.soft_start):
        raise SpecError(f"ValueError: soft_start must be in (0, 1), got {sched.soft_start}")
    if which == "soft_start_annealing_schedule":
        if not _open01(sched.annealing):
            raise SpecError(f"ValueError: annealing must be in (0, 1), got {sched.annealing}")
        if sched.soft_start >= sched.annealing:
            raise SpecError("ValueError: soft_start must be smaller than annealing")
        if sched.min_learning_rate <= 0 or sched.max_learning_rate <= 0:
            raise SpecError("ValueError: learning rates must be > 0")
    elif sched.max_learning_rate <= 0:
        raise SpecError("ValueError: max_learning_rate must be > 0")


def check_detection_experiment(exp, net: str, cfg_field: str) -> None:
    """The SSD-style loader checks shared by SSD, DSSD, RetinaNet and YOLO."""
    required = ["dataset_config", "augmentation_config", "training_config", "eval_config",
                "nms_config"]
    for name in required:
        if not exp.HasField(name):
            raise SpecError(f"ValueError: the spec file is missing {name}")
    if net in ("ssd", "dssd"):
        which = exp.WhichOneof("network")
        if which is None:
            raise SpecError(f"ValueError: the spec file is missing {cfg_field}")
        if which != cfg_field:
            raise SpecError(f"ValueError: {net} needs {cfg_field} in the spec, found {which}")
    elif not exp.HasField(cfg_field):
        raise SpecError(f"ValueError: the spec file is missing {cfg_field}")
    check_training_config(exp.training_config, net)
    nms = exp.nms_config
    if not _open01(nms.confidence_threshold):
        raise SpecError("ValueError: nms_config.confidence_threshold must be in (0, 1), got "
                        f"{nms.confidence_threshold}")
    if not _open01(nms.clustering_iou_threshold):
        raise SpecError("ValueError: nms_config.clustering_iou_threshold must be in (0, 1), got "
                        f"{nms.clustering_iou_threshold}")
    if nms.top_k <= 0:
        raise SpecError("ValueError: nms_config.top_k must be > 0")
    ev = exp.eval_config
    if not _open01(ev.matching_iou_threshold):
        raise SpecError("ValueError: eval_config.matching_iou_threshold must be in (0, 1), got "
                        f"{ev.matching_iou_threshold}")
    if ev.batch_size <= 0:
        raise SpecError("ValueError: eval_config.batch_size must be > 0")
    channels, height, width = input_shape(exp)
    if tlt2_layout(exp):
        if not exp.augmentation_config.HasField("preprocessing"):
            raise SpecError("ValueError: augmentation_config.preprocessing is required")
    if width <= 32 or height <= 32:
        raise SpecError("ValueError: augmentation_config output_width and output_height must be "
                        f"> 32, got {width}x{height}")
    if channels not in (1, 3):
        raise SpecError(f"ValueError: output_channel must be 1 or 3, got {channels}")
    cfg = getattr(exp, cfg_field)
    if net.startswith("yolo"):
        if width % 32 or height % 32:
            raise SpecError("ValueError: YOLO output_width and output_height must be multiples "
                            f"of 32, got {width}x{height}")
        shapes = ["big_anchor_shape", "mid_anchor_shape"]
        if net != "yolo_v4_tiny":
            shapes.append("small_anchor_shape")
        for name in shapes:
            if not getattr(cfg, name):
                raise SpecError(f"ValueError: {cfg_field}.{name} is not set")
            parse_anchor_shape(getattr(cfg, name), name)
    else:
        if cfg.variances:
            if len(parse_float_list(cfg.variances, "variances")) != 4:
                raise SpecError("ValueError: variances must be a list of 4 floats, got "
                                f"{cfg.variances!r}")
        has_scales = bool(cfg.scales)
        if not has_scales:
            if not (_open01(cfg.min_scale) and _open01(cfg.max_scale)) or cfg.min_scale >= cfg.max_scale:
                raise SpecError("ValueError: set scales, or min_scale < max_scale in (0, 1)")
        if not (cfg.aspect_ratios or cfg.aspect_ratios_global):
            raise SpecError("ValueError: set aspect_ratios or aspect_ratios_global")
    check_dataset_sources(exp.dataset_config)


def check_dataset_sources(ds) -> None:
    """What every detection loader refuses in dataset_config: no data, no classes."""
    if not ds.data_sources:
        raise SpecError("ValueError: dataset_config.data_sources is empty")
    if not ds.target_class_mapping:
        raise SpecError("ValueError: dataset_config.target_class_mapping is empty")


def check_detectnet_experiment(exp) -> None:
    for name in ("dataset_config", "augmentation_config", "postprocessing_config", "model_config",
                 "evaluation_config", "cost_function_config", "training_config",
                 "bbox_rasterizer_config"):
        if not exp.HasField(name):
            raise SpecError(f"ValueError: the spec file is missing {name}")
    check_training_config(exp.training_config, "detectnet_v2")
    pre = exp.augmentation_config.preprocessing
    if pre.output_image_width <= 0 or pre.output_image_height <= 0:
        raise SpecError("ValueError: preprocessing output_image_width/height must be set")
    if pre.output_image_width % 16 or pre.output_image_height % 16:
        raise SpecError("ValueError: output_image_width and output_image_height must be "
                        f"multiples of 16, got {pre.output_image_width}x{pre.output_image_height}")
    if pre.output_image_channel not in (1, 3):
        raise SpecError("ValueError: output_image_channel must be 1 or 3")
    ds = exp.dataset_config
    check_dataset_sources(ds)
    targets = sorted(set(mapping(ds.target_class_mapping).values()))
    cost_classes = {tc.name for tc in exp.cost_function_config.target_classes}
    post_classes = {e.key for e in exp.postprocessing_config.target_class_config}
    rast_classes = {e.key for e in exp.bbox_rasterizer_config.target_class_config}
    for what, classes in (("cost_function_config.target_classes", cost_classes),
                          ("postprocessing_config.target_class_config", post_classes),
                          ("bbox_rasterizer_config.target_class_config", rast_classes)):
        missing = [c for c in targets if c not in classes]
        if missing:
            raise SpecError(f"ValueError: {what} has no entry for target class(es) {missing}")
    for entry in exp.postprocessing_config.target_class_config:
        cc = entry.value.clustering_config
        if not _open01(cc.coverage_threshold) and cc.coverage_threshold != 0:
            raise SpecError("ValueError: coverage_threshold must be in [0, 1)")
    if exp.evaluation_config.validation_period_during_training <= 0:
        raise SpecError("ValueError: evaluation_config.validation_period_during_training must be > 0")
    if not exp.model_config.arch:
        raise SpecError("ValueError: model_config.arch is not set")


def check_dataset_export(spec) -> None:
    which = spec.WhichOneof("convert_config_type")
    if which is None:
        raise SpecError("ValueError: the dataset export spec needs kitti_config or coco_config")
