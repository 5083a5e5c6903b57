"""YOLOv3, YOLOv4 and YOLOv4-tiny: the starting model is a spec field, anchors come from the data.

train takes only -e -r -k: pretrain_model_path, resume_model_path or pruned_model_path in
training_config says where training starts; on resume the start epoch is read from the
checkpoint's file name. prune reads the experiment spec (-e). Validation runs at every
checkpoint_interval: eval_config has no validation period (TLT 2.0's YOLOv3 layout had one).
"""

from __future__ import annotations

from tlt_pipe.networks import ALL_TOOLKITS, BACKBONES, BATCHED_NMS_LAYER, Network, checks
from tlt_pipe.networks.passing import IN_SPEC

_FROM_TAO3 = ALL_TOOLKITS - {"2.0"}  # YOLOv4 arrived with TAO 3.0
_V4_ARCHS = (*BACKBONES, "cspdarknet", "cspdarknet_tiny", "cspdarknet_tiny_3l")  # YOLOv4 and YOLOv4-tiny


# The ranges YOLOv4's spec loader enforces (NVIDIA's TAO 5.0 yolo_v4 sources): low, high, open ends.
_V4_BOUNDS = {
    "augmentation_config.hue": (0.0, 1.0, False, False),
    "augmentation_config.saturation": (1.0, None, False, False),
    "augmentation_config.exposure": (1.0, None, False, False),
    "augmentation_config.vertical_flip": (0.0, 1.0, False, False),
    "augmentation_config.horizontal_flip": (0.0, 1.0, False, False),
    "augmentation_config.jitter": (0.0, 1.0, False, False),
    "augmentation_config.mosaic_prob": (0.0, 1.0, False, False),
    "augmentation_config.mosaic_min_ratio": (0.0, 0.5, True, True),
    "yolov4_config.box_matching_iou": (0.0, 1.0, True, False),
    "yolov4_config.matching_neutral_box_iou": (0.25, 1.0, True, False),
    "yolov4_config.label_smoothing": (0.0, 0.3, False, False),
    "yolov4_config.big_grid_xy_extend": (0.0, 0.3, False, False),
    "yolov4_config.mid_grid_xy_extend": (0.0, 0.3, False, False),
    "yolov4_config.small_grid_xy_extend": (0.0, 0.3, False, False),
}


def _check(field: str, groups: tuple[str, ...]):
    def check(message) -> list[str]:
        # TLT 2.0 named YOLOv3's block yolo_config.
        name = field if field in message.DESCRIPTOR.fields_by_name else "yolo_config"
        problems = checks.detection(message, name)
        for path, value in checks.input_size(message).items():
            if value % 32:
                problems.append(f"{path}: {value} is not a multiple of 32")
        if name == "yolov4_config":
            problems += checks.bounds(message, _V4_BOUNDS)
        return problems + checks.anchor_shapes(getattr(message, name), name, groups)

    return check


_V3_V4 = ("small_anchor_shape", "mid_anchor_shape", "big_anchor_shape")
_TINY = ("mid_anchor_shape", "big_anchor_shape")

NETWORKS = (
    Network(
        name="yolo_v3", family="yolo", checkpoint_prefix="yolov3", legacy_layout=True,
        output_nodes="BatchedNMS", input_name="Input", model_passing=IN_SPEC, nvinfer=BATCHED_NMS_LAYER, toolkits=ALL_TOOLKITS,
        archs=BACKBONES,
        prune_reads_spec=True, validates_at_checkpoints=True,
        check_spec=_check("yolov3_config", _V3_V4), default_arch="darknet", default_nlayers=53,
        default_input=(416, 416), input_multiple=32, legacy_name="yolo", anchor_groups=_V3_V4,
    ),
    Network(
        name="yolo_v4", family="yolo", checkpoint_prefix="yolov4",
        output_nodes="BatchedNMS", input_name="Input", model_passing=IN_SPEC, nvinfer=BATCHED_NMS_LAYER, toolkits=_FROM_TAO3,
        archs=_V4_ARCHS,
        prune_reads_spec=True, validates_at_checkpoints=True,
        check_spec=_check("yolov4_config", _V3_V4), default_arch="resnet", default_nlayers=18,
        default_input=(320, 320), input_multiple=32, anchor_groups=_V3_V4,
    ),
    Network(
        name="yolo_v4_tiny", family="yolo", checkpoint_prefix="yolov4",
        output_nodes="BatchedNMS", input_name="Input", model_passing=IN_SPEC, nvinfer=BATCHED_NMS_LAYER, toolkits=_FROM_TAO3,
        archs=_V4_ARCHS,
        prune_reads_spec=True, validates_at_checkpoints=True,
        check_spec=_check("yolov4_config", _TINY), default_arch="cspdarknet_tiny", default_nlayers=None,
        default_input=(320, 320), input_multiple=32, anchor_groups=_TINY,
    ),
)
