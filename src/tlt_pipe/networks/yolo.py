"""YOLOv3, YOLOv4 and YOLOv4-tiny: the starting model is a spec field, anchors come from the data.

train takes only -e -r -k: pretrain_model_path, resume_model_path or pruned_model_path in
training_config says where training starts; on resume the start epoch is read from the
checkpoint's file name. prune reads the experiment spec (-e). Validation runs at every
checkpoint_interval: eval_config has no validation period (TLT 2.0's YOLOv3 layout had one).
"""

from __future__ import annotations

from tlt_pipe.networks import ALL_TOOLKITS, Network, checks

_FROM_TAO3 = ALL_TOOLKITS - {"2.0"}  # YOLOv4 arrived with TAO 3.0


def _check(field: str, groups: tuple[str, ...]):
    def check(message) -> list[str]:
        # TLT 2.0 named YOLOv3's block yolo_config.
        name = field if field in message.DESCRIPTOR.fields_by_name else "yolo_config"
        problems = checks.detection(message, name)
        for path, value in checks.input_size(message).items():
            if value % 32:
                problems.append(f"{path}: {value} is not a multiple of 32")
        return problems + checks.anchor_shapes(getattr(message, name), name, groups)

    return check


_V3_V4 = ("small_anchor_shape", "mid_anchor_shape", "big_anchor_shape")
_TINY = ("mid_anchor_shape", "big_anchor_shape")

NETWORKS = (
    Network(
        name="yolo_v3", family="yolo", checkpoint_prefix="yolov3", legacy_layout=True,
        output_nodes="BatchedNMS", input_name="Input", model_passing="spec", toolkits=ALL_TOOLKITS,
        prune_reads_spec=True, validates_at_checkpoints=True,
        check_spec=_check("yolov3_config", _V3_V4), default_arch="darknet", default_nlayers=53,
        default_input=(416, 416), input_multiple=32, legacy_name="yolo", anchor_groups=_V3_V4,
    ),
    Network(
        name="yolo_v4", family="yolo", checkpoint_prefix="yolov4",
        output_nodes="BatchedNMS", input_name="Input", model_passing="spec", toolkits=_FROM_TAO3,
        prune_reads_spec=True, validates_at_checkpoints=True,
        check_spec=_check("yolov4_config", _V3_V4), default_arch="resnet", default_nlayers=18,
        default_input=(320, 320), input_multiple=32, anchor_groups=_V3_V4,
    ),
    Network(
        name="yolo_v4_tiny", family="yolo", checkpoint_prefix="yolov4",
        output_nodes="BatchedNMS", input_name="Input", model_passing="spec", toolkits=_FROM_TAO3,
        prune_reads_spec=True, validates_at_checkpoints=True,
        check_spec=_check("yolov4_config", _TINY), default_arch="cspdarknet_tiny", default_nlayers=None,
        default_input=(320, 320), input_multiple=32, anchor_groups=_TINY,
    ),
)
