"""SSD, DSSD and RetinaNet: models reach train through -m and --initial_epoch."""

from __future__ import annotations

from tlt_pipe.networks import ALL_TOOLKITS, Network, checks


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
        name="ssd", family="ssd", spec_message="SsdExperiment", checkpoint_prefix="ssd",
        tlt2_spec_message="Tlt2SsdExperiment",
        output_nodes="NMS", input_name="Input", model_passing="flag", toolkits=ALL_TOOLKITS,
        labels_with_background=True, check_spec=check_ssd_spec,
    ),
    Network(
        name="dssd", family="ssd", spec_message="SsdExperiment", checkpoint_prefix="dssd",
        tlt2_spec_message="Tlt2SsdExperiment",
        output_nodes="NMS", input_name="Input", model_passing="flag", toolkits=ALL_TOOLKITS,
        labels_with_background=True, check_spec=check_ssd_spec,
    ),
    Network(
        name="retinanet", family="retinanet", spec_message="RetinanetExperiment",
        tlt2_spec_message="Tlt2RetinanetExperiment", checkpoint_prefix="retinanet",
        output_nodes="NMS", input_name="Input", model_passing="flag", toolkits=ALL_TOOLKITS,
        check_spec=check_retinanet_spec, default_input=(384, 384),
    ),
)
