"""The value checks TAO's spec loaders make after parsing, shared by the network families.

Each check takes the parsed spec message and returns a list of problems ("field: why").
"""

from __future__ import annotations

import re


def _open01(value: float) -> bool:
    return 0 < value < 1


def entries(container) -> dict:
    """A key/value spec field as a dict: a proto map (TAO 3 and later) or repeated key/value messages."""
    if hasattr(container, "items"):
        return dict(container.items())
    return {entry.key: entry.value for entry in container}


def required(message, names: tuple[str, ...]) -> list[str]:
    return [f"{name}: required message is missing" for name in names if not message.HasField(name)]


def schedule(training_config) -> list[str]:
    """soft_start and annealing of the learning-rate schedule in (0, 1), soft_start before annealing."""
    problems: list[str] = []
    rate = training_config.learning_rate
    which = rate.WhichOneof("learning_rate")
    if which is None:
        return ["training_config.learning_rate: no schedule is set"]
    chosen = getattr(rate, which)
    names = ("soft_start", "annealing") if which == "soft_start_annealing_schedule" else ("soft_start",)
    for name in names:
        value = getattr(chosen, name)
        if not _open01(value):
            problems.append(f"training_config.learning_rate.{which}.{name}: {value} is not in (0, 1)")
    if not problems and which == "soft_start_annealing_schedule" and chosen.soft_start >= chosen.annealing:
        problems.append(f"training_config.learning_rate.{which}: soft_start must come before annealing")
    return problems


def detection(message, config_field: str) -> list[str]:
    """SSD, DSSD, RetinaNet and YOLO share training, eval, NMS, augmentation and dataset messages."""
    problems = required(message, ("training_config", "eval_config", "nms_config", "augmentation_config",
                                  "dataset_config"))
    if not message.HasField(config_field):
        problems.append(f"{config_field}: required message is missing")
    problems += schedule(message.training_config)
    if message.HasField("eval_config") and not _open01(message.eval_config.matching_iou_threshold):
        problems.append(f"eval_config.matching_iou_threshold: {message.eval_config.matching_iou_threshold} "
                        "is not in (0, 1)")
    if message.HasField("nms_config"):
        for name in ("confidence_threshold", "clustering_iou_threshold"):
            value = getattr(message.nms_config, name)
            if not _open01(value):
                problems.append(f"nms_config.{name}: {value} is not in (0, 1)")
    if message.HasField("augmentation_config"):
        for name, value in input_size(message).items():
            if value <= 32:
                problems.append(f"{name}: {value} must be larger than 32")
    if message.HasField("dataset_config") and not message.dataset_config.target_class_mapping:
        problems.append("dataset_config.target_class_mapping: no class is mapped")
    return problems


def input_size(message) -> dict[str, int]:
    """The model input width and height of a detection spec, keyed by their field paths: TAO 3+
    writes augmentation_config.output_width, TLT 2.0 DetectNet_v2's preprocessing block."""
    aug = message.augmentation_config
    if "preprocessing" in aug.DESCRIPTOR.fields_by_name:
        pre = aug.preprocessing
        return {f"augmentation_config.preprocessing.{name}": getattr(pre, name)
                for name in ("output_image_width", "output_image_height")}
    return {f"augmentation_config.{name}": getattr(aug, name) for name in ("output_width", "output_height")}


def variances(config, field: str) -> list[str]:
    text = config.variances.strip("[] ")
    if text and len([v for v in text.split(",") if v.strip()]) != 4:
        return [f"{field}.variances: needs 4 values, got {config.variances!r}"]
    return []


_ANCHOR_SHAPE = re.compile(r"^\[\s*\(\s*[\d.]+\s*,\s*[\d.]+\s*\)(\s*,\s*\(\s*[\d.]+\s*,\s*[\d.]+\s*\))*\s*\]$")


def anchor_shapes(config, field: str, names: tuple[str, ...]) -> list[str]:
    """YOLO anchor shape strings: "[(w, h), ...]". A <stage.artifact> placeholder passes (dry runs)."""
    problems = []
    for name in names:
        value = getattr(config, name)
        if value.startswith("<"):
            continue
        if not _ANCHOR_SHAPE.match(value.strip()):
            problems.append(f"{field}.{name}: expected \"[(w, h), ...]\", got {value!r}")
    return problems


def bounds(message, table: dict[str, tuple[float, float | None, bool, bool]]) -> list[str]:
    """Values outside a loader's ranges: field path -> (low, high or None, low open, high open)."""
    problems = []
    for path, (low, high, low_open, high_open) in table.items():
        block, name = path.split(".")
        value = getattr(getattr(message, block), name)
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            span = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
            problems.append(f"{path}: {value} is not in {span}")
    return problems
