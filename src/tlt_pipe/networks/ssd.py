"""SSD and DSSD: models reach train through -m and --initial_epoch."""

from __future__ import annotations

from tlt_pipe.networks import Network

_ALL = frozenset({"2.0", "3.21.11", "3.22.05", "4.0", "5.0"})


def check_ssd_spec(message) -> list[str]:
    """The value checks the SSD loader makes after parsing (tao-contract.md section 6)."""
    problems: list[str] = []
    for name in ("training_config", "eval_config", "nms_config", "augmentation_config", "dataset_config"):
        if not message.HasField(name):
            problems.append(f"{name}: required message is missing")
    if not (message.HasField("ssd_config") or message.HasField("dssd_config")):
        problems.append("ssd_config: required message is missing")
    schedule = message.training_config.learning_rate.soft_start_annealing_schedule
    for name in ("soft_start", "annealing"):
        value = getattr(schedule, name)
        if not 0 < value < 1:
            problems.append(f"training_config.learning_rate.soft_start_annealing_schedule.{name}: {value} is not in (0, 1)")
    if message.HasField("eval_config") and not 0 < message.eval_config.matching_iou_threshold < 1:
        problems.append(f"eval_config.matching_iou_threshold: {message.eval_config.matching_iou_threshold} is not in (0, 1)")
    nms = message.nms_config
    for name in ("confidence_threshold", "clustering_iou_threshold"):
        if message.HasField("nms_config") and not 0 < getattr(nms, name) < 1:
            problems.append(f"nms_config.{name}: {getattr(nms, name)} is not in (0, 1)")
    aug = message.augmentation_config
    for name in ("output_width", "output_height"):
        if message.HasField("augmentation_config") and getattr(aug, name) <= 32:
            problems.append(f"augmentation_config.{name}: {getattr(aug, name)} must be larger than 32")
    anchors = message.ssd_config if message.HasField("ssd_config") else message.dssd_config
    variances = anchors.variances.strip("[] ")
    if variances and len([v for v in variances.split(",") if v.strip()]) != 4:
        problems.append(f"{'ssd_config' if message.HasField('ssd_config') else 'dssd_config'}.variances: needs 4 values, got {anchors.variances!r}")
    return problems


NETWORKS = (
    Network(
        name="ssd", family="ssd", spec_message="SsdExperiment", checkpoint_prefix="ssd",
        output_nodes="NMS", input_name="Input", model_passing="flag", toolkits=_ALL,
        labels_with_background=True, check_spec=check_ssd_spec,
    ),
    Network(
        name="dssd", family="ssd", spec_message="SsdExperiment", checkpoint_prefix="dssd",
        output_nodes="NMS", input_name="Input", model_passing="flag", toolkits=_ALL,
        labels_with_background=True, check_spec=check_ssd_spec,
    ),
)
