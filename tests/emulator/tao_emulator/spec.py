"""Spec file parsing with NVIDIA's own messages, plus the loaders' value checks.

TAO 3.x-5.x specs (and TLT 2.0's DetectNet_v2 and dataset_convert specs) are parsed with the
messages of NVIDIA's wheels (nvidia.py: one descriptor pool per spec kind, since TAO's protos have
no package and several define `Experiment`); TLT 2.0's SSD/DSSD/RetinaNet/YOLOv3 layouts with the
hand-written schema.py. Parsing is text_format.Merge into the root message, as TAO's own loaders
do. Only APIs of protobuf 3.21 (Debian bookworm, what runs in the images) are used.
"""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, text_format

from . import catalog, nvidia
from . import schema as _schema

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _FDP.TYPE_DOUBLE,
    "float": _FDP.TYPE_FLOAT,
    "int32": _FDP.TYPE_INT32,
    "int64": _FDP.TYPE_INT64,
    "uint32": _FDP.TYPE_UINT32,
    "uint64": _FDP.TYPE_UINT64,
    "bool": _FDP.TYPE_BOOL,
    "string": _FDP.TYPE_STRING,
}


class SpecError(Exception):
    """The spec file could not be parsed or failed the loader's checks."""


# ---------------------------------------------------------------------------------------------
# TLT 2.0's hand-written layouts (schema.py) as a FileDescriptorProto


def parse_field_decl(decl: str) -> tuple[str, str, str, str | None]:
    """``"repeated uint32 freeze_blocks"`` -> (label, type, name, oneof); maps -> ("map", "K,V", ...)."""
    parts = decl.split()
    if parts[0].startswith("map<") and parts[0].endswith(">") and len(parts) == 2:
        return "map", parts[0][4:-1], parts[1], None
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


def _set_type(field, type_name: str, package: str, messages, where: str) -> None:
    if type_name in _SCALARS:
        field.type = _SCALARS[type_name]
    elif type_name in _schema.ENUMS:
        field.type = _FDP.TYPE_ENUM
        field.type_name = f".{package}.{type_name}"
    elif type_name in messages:
        field.type = _FDP.TYPE_MESSAGE
        field.type_name = f".{package}.{type_name}"
    else:
        raise ValueError(f"{where}: unknown type {type_name!r}")


def _map_entry(proto, field, types: str, package: str, owner: str, messages) -> None:
    """proto3 `map<K,V> name`: a nested NameEntry {key = 1; value = 2} flagged map_entry."""
    key_type, value_type = (t.strip() for t in types.split(","))
    entry_name = "".join(part.capitalize() for part in field.name.split("_")) + "Entry"
    entry = proto.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    for number, (name, type_name) in enumerate((("key", key_type), ("value", value_type)), start=1):
        sub = entry.field.add(name=name, number=number, json_name=name, label=_FDP.LABEL_OPTIONAL)
        _set_type(sub, type_name, package, messages, f"{owner}.{entry_name}")
    field.label = _FDP.LABEL_REPEATED
    field.type = _FDP.TYPE_MESSAGE
    field.type_name = f".{package}.{owner}.{entry_name}"


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
            if label == "map":
                _map_entry(proto, field, type_name, package, msg_name, messages)
                continue
            field.label = _FDP.LABEL_REPEATED if label == "repeated" else _FDP.LABEL_OPTIONAL
            _set_type(field, type_name, package, messages, f"{name}: {msg_name}")
            if oneof is not None:
                if oneof not in oneofs:
                    oneofs[oneof] = len(proto.oneof_decl)
                    proto.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs[oneof]
    return fdp


# ---------------------------------------------------------------------------------------------
# message classes


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
def _hand_written(kind: str):
    definition = _schema.SCHEMAS[kind]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor(kind, definition))
    return _message_class(pool.FindMessageTypeByName(f"{definition['package']}.{definition['root']}"))


def _add_fields(files, additions: dict) -> None:
    """Append scalar fields (schema.TLT2_ADDITIONS) to top-level messages of a FileDescriptorSet."""
    for proto in files.file:
        for message in proto.message_type:
            for decl in additions.get(message.name, ()):
                label, type_name, name, _ = parse_field_decl(decl)
                number = max((f.number for f in message.field), default=0) + 1
                message.field.add(name=name, number=number, json_name=name, type=_SCALARS[type_name],
                                  label=_FDP.LABEL_REPEATED if label == "repeated" else _FDP.LABEL_OPTIONAL)


@functools.lru_cache(maxsize=None)
def _nvidia(schema_version: str, kind: str, tlt2: bool):
    files = descriptor_pb2.FileDescriptorSet.FromString(nvidia.descriptor_set(schema_version, kind))
    if tlt2:
        _add_fields(files, _schema.TLT2_ADDITIONS.get(kind, {}))
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:  # dependencies first
        pool.Add(proto)
    return _message_class(pool.FindMessageTypeByName(nvidia.roots()[kind]))


def message_class(version: str, kind: str):
    """The root message of one spec kind as the image of a toolkit version reads it."""
    if kind in _schema.SCHEMAS:
        return _hand_written(kind)
    return _nvidia(catalog.schema_version(version), kind, version == "2.0")


def parse_text(version: str, kind: str, text: str):
    msg = message_class(version, kind)()
    try:
        text_format.Merge(text, msg)
    except text_format.ParseError as exc:
        raise SpecError(f"google.protobuf.text_format.ParseError: {exc}") from None
    return msg


def load(version: str, kind: str, path: str):
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
    return parse_text(version, kind, text)


def mapping(entries) -> dict:
    """A proto map field -> dict."""
    return dict(entries.items())


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


def check_training_config(tc) -> None:
    if tc.num_epochs <= 0:
        raise SpecError("ValueError: training_config.num_epochs must be > 0")
    if tc.batch_size_per_gpu <= 0:
        raise SpecError("ValueError: training_config.batch_size_per_gpu must be > 0")
    which = tc.learning_rate.WhichOneof("learning_rate")
    if which is None:
        raise SpecError("ValueError: training_config.learning_rate is not set")
    sched = getattr(tc.learning_rate, which)
    if sched.max_learning_rate <= 0:
        raise SpecError("ValueError: max_learning_rate must be > 0")
    if not which.startswith("soft_start"):  # DetectNet_v2's early_stopping_annealing_schedule
        return
    if not _open01(sched.soft_start):
        raise SpecError(f"ValueError: soft_start must be in (0, 1), got {sched.soft_start}")
    if which == "soft_start_annealing_schedule":
        if not _open01(sched.annealing):
            raise SpecError(f"ValueError: annealing must be in (0, 1), got {sched.annealing}")
        if sched.soft_start >= sched.annealing:
            raise SpecError("ValueError: soft_start must be smaller than annealing")
        if sched.min_learning_rate <= 0:
            raise SpecError("ValueError: learning rates must be > 0")


def config_field(exp, net: str) -> str:
    """The network block a detection spec trains: SSD and DSSD are one command, the spec decides."""
    if catalog.family(net) != "ssd":
        return "yolo_config" if "yolo_config" in exp.DESCRIPTOR.fields_by_name else catalog.NETS[net]["config"]
    which = exp.WhichOneof("network")
    if which is None:
        raise SpecError("AssertionError: Network config missing in spec file.")
    return which


def spec_network(exp, net: str) -> str:
    """The network a detection spec describes (`ssd` with a dssd_config trains DSSD)."""
    return config_field(exp, net).split("_")[0] if catalog.family(net) == "ssd" else net


def _check_anchor_shapes(cfg, cfg_field: str) -> None:
    """YOLO: big and mid anchors always; small ones except on cspdarknet_tiny, which refuses them."""
    for name in ("big_anchor_shape", "mid_anchor_shape"):
        if not getattr(cfg, name):
            raise SpecError(f"AssertionError: `{name}` is not provided in spec file.")
        parse_anchor_shape(getattr(cfg, name), name)
    if cfg.arch == "cspdarknet_tiny":
        if cfg.small_anchor_shape:
            raise SpecError("AssertionError: `small_anchor_shape` is not supported by "
                            "`cspdarknet_tiny` backbone.")
        if getattr(cfg, "small_grid_xy_extend", 0.0):
            raise SpecError("AssertionError: `small_grid_xy_extend` is not support by "
                            "`cspdarknet_tiny` backbone.")
        return
    if not cfg.small_anchor_shape:
        raise SpecError("AssertionError: `small_anchor_shape` is not provided in spec file.")
    parse_anchor_shape(cfg.small_anchor_shape, "small_anchor_shape")


def _check_ssd_anchors(cfg) -> None:
    if cfg.variances:
        if len(parse_float_list(cfg.variances, "variances")) != 4:
            raise SpecError("ValueError: variances must be a list of 4 floats, got "
                            f"{cfg.variances!r}")
    if not cfg.scales:
        if not (_open01(cfg.min_scale) and _open01(cfg.max_scale)) or cfg.min_scale >= cfg.max_scale:
            raise SpecError("ValueError: set scales, or min_scale < max_scale in (0, 1)")
    if not (cfg.aspect_ratios or cfg.aspect_ratios_global):
        raise SpecError("ValueError: set aspect_ratios or aspect_ratios_global")


# YOLOv4's loader bounds (TAO 5.0 yolo_v4 spec loader): field -> (low, high, low open, high open).
_YOLO_V4_BOUNDS = {
    "augmentation_config.hue": (0.0, 1.0, False, False),
    "augmentation_config.saturation": (1.0, None, False, False),
    "augmentation_config.exposure": (1.0, None, False, False),
    "augmentation_config.vertical_flip": (0.0, 1.0, False, False),
    "augmentation_config.horizontal_flip": (0.0, 1.0, False, False),
    "augmentation_config.jitter": (0.0, 1.0, False, False),
    "augmentation_config.mosaic_prob": (0.0, 1.0, False, False),
    "augmentation_config.mosaic_min_ratio": (0.0, 0.5, True, True),
    "training_config.checkpoint_interval": (0, None, True, False),
    "yolov4_config.box_matching_iou": (0.0, 1.0, True, False),
    "yolov4_config.matching_neutral_box_iou": (0.25, 1.0, True, False),
    "yolov4_config.label_smoothing": (0.0, 0.3, False, False),
    "yolov4_config.big_grid_xy_extend": (0.0, 0.3, False, False),
    "yolov4_config.mid_grid_xy_extend": (0.0, 0.3, False, False),
    "yolov4_config.small_grid_xy_extend": (0.0, 0.3, False, False),
}


def _check_bounds(exp, bounds: dict) -> None:
    for path, (low, high, low_open, high_open) in bounds.items():
        block, field = path.split(".")
        value = getattr(getattr(exp, block), field)
        if (value <= low if low_open else value < low) or (
                high is not None and (value >= high if high_open else value > high)):
            where = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}" \
                    f"{')' if high_open or high is None else ']'}"
            raise SpecError(f"AssertionError: {field} must be within {where}, got {value}")


def _check_yolo_v4(exp) -> None:
    _check_bounds(exp, _YOLO_V4_BOUNDS)
    ds = exp.dataset_config
    sources = list(ds.data_sources) + list(ds.validation_data_sources)
    if any(s.WhichOneof("labels_format") == "tfrecords_path" for s in sources) and not ds.image_extension:
        raise SpecError("AssertionError: `image_extension` should be specified in `dataset_config` "
                        "if training  label format is TFRecord.")


def check_detection_experiment(exp, net: str) -> None:
    """The loader checks of SSD, DSSD, RetinaNet and YOLO."""
    cfg_field = config_field(exp, net)
    for name in ("dataset_config", "augmentation_config", "training_config", "eval_config",
                 "nms_config", cfg_field):
        if not exp.HasField(name):
            raise SpecError(f"ValueError: the spec file is missing {name}")
    check_training_config(exp.training_config)
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
        _check_anchor_shapes(cfg, cfg_field)
        if catalog.family(net) == "yolo_v4":
            _check_yolo_v4(exp)
    else:
        _check_ssd_anchors(cfg)
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
    check_training_config(exp.training_config)
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
    post = exp.postprocessing_config.target_class_config
    for what, classes in (("cost_function_config.target_classes", cost_classes),
                          ("postprocessing_config.target_class_config", set(post.keys())),
                          ("bbox_rasterizer_config.target_class_config",
                           set(exp.bbox_rasterizer_config.target_class_config.keys()))):
        missing = [c for c in targets if c not in classes]
        if missing:
            raise SpecError(f"ValueError: {what} has no entry for target class(es) {missing}")
    for value in post.values():
        cc = value.clustering_config
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
