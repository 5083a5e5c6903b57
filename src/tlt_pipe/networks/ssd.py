"""SSD, DSSD and RetinaNet.

SSD and DSSD take the starting model with train -m (resume: -m CHECKPOINT --initial_epoch N+1).
RetinaNet's train has no -m: like YOLO, the model is a training_config field (pretrain_model_path,
pruned_model_path, resume_model_path, the resume epoch read from the checkpoint's file name).
"""

from __future__ import annotations

from tlt_pipe.networks import ALL_TOOLKITS, BACKBONES, Network, checks
from tlt_pipe.networks.passing import BY_FLAG, IN_SPEC


def check_ssd_spec(message) -> list[str]:
    """The value checks the SSD/DSSD loader makes after parsing (tao-contract.md section 6)."""
    field = message.WhichOneof("network") or "ssd_config"
    problems = checks.detection(message, field)
    return problems + checks.variances(getattr(message, field), field)


def check_retinanet_spec(message) -> list[str]:
    return checks.detection(message, "retinanet_config") + checks.variances(message.retinanet_config,
                                                                           "retinanet_config")


NETWORKS = (
    Network(
        name="ssd", family="ssd", checkpoint_prefix="ssd", legacy_layout=True,
        output_nodes="NMS", input_name="Input", model_passing=BY_FLAG, toolkits=ALL_TOOLKITS, archs=BACKBONES,
        labels_with_background=True, check_spec=check_ssd_spec,
    ),
    Network(
        name="dssd", family="ssd", checkpoint_prefix="dssd", legacy_layout=True,
        output_nodes="NMS", input_name="Input", model_passing=BY_FLAG, toolkits=ALL_TOOLKITS, archs=BACKBONES,
        labels_with_background=True, check_spec=check_ssd_spec,
    ),
    Network(
        name="retinanet", family="retinanet", checkpoint_prefix="retinanet", legacy_layout=True,
        output_nodes="NMS", input_name="Input", model_passing=IN_SPEC, toolkits=ALL_TOOLKITS, archs=BACKBONES,
        check_spec=check_retinanet_spec, default_input=(384, 384),
    ),
)
