"""`tltpipe init`: a commented starter config with the tutorials' defaults."""

from __future__ import annotations

from tlt_pipe.networks import get_network
from tlt_pipe.registry import DATASET_FORMATS, DEFAULT_TOOLKIT
from tlt_pipe.specs import render_template
from tlt_pipe.toolkits import TOOLKITS, get_toolkit

# network -> (prune threshold, equalization) as the tutorials prune
_PRUNE = {"yolo_v4": (0.7, "union"), "yolo_v4_tiny": (0.7, "union"), "yolo_v3": (0.5, "union")}


def starter_config(network: str, *, toolkit: str | None = None, dataset_format: str = "kitti",
                   dataset_path: str = "data/plates", name: str | None = None) -> str:
    from tlt_pipe.networks import NETWORKS

    default = NETWORKS[network].default_toolkit if network in NETWORKS else None
    kit = get_toolkit(toolkit or default or DEFAULT_TOOLKIT)
    net = get_network(network, kit.version)
    if net.framework == "pytorch_ssd":
        return render_template("config_pytorch_ssd.yaml.j2", {"network": network, "dataset_format": dataset_format,
                                                              "dataset_path": dataset_path, "name": name or f"{network}-run"})
    if net.framework == "tao_pyt":
        return render_template("config_tao_pyt.yaml.j2", {
            "network": network, "toolkit": kit.version, "toolkits": _listed(v for v in TOOLKITS if v in net.toolkits),
            "dataset_format": dataset_format, "dataset_path": dataset_path, "name": name or f"{network}-run",
            "formats": _listed(DATASET_FORMATS), "arch": net.default_arch, "archs": ", ".join(net.archs),
            "input_width": net.default_input[0], "input_height": net.default_input[1], "multiple": net.input_multiple})
    tag = f"{net.default_arch}{net.default_nlayers or ''}"
    threshold, equalization = _PRUNE.get(network, (0.1, "intersection"))
    return render_template("config.yaml.j2", {
        "network": network, "toolkit": kit.version, "key_required": kit.key_required,
        "dataset_format": dataset_format, "dataset_path": dataset_path, "name": name or f"{network}-run",
        "arch": net.default_arch, "nlayers": net.default_nlayers, "input_width": net.default_input[0],
        "input_height": net.default_input[1], "multiple": net.input_multiple,
        "pretrained": f"ngc:{net.ngc_model}:{tag}",
        "anchors": 3 * len(net.anchor_groups), "validates_at_checkpoints": net.validation_at_checkpoints(kit.version), "prune_threshold": threshold, "prune_equalization": equalization,
        "toolkits": _listed(v for v in TOOLKITS if v in net.toolkits), "formats": _listed(DATASET_FORMATS),
    })


def _listed(values) -> str:
    return " | ".join(f'"{v}"' if "." in v else v for v in values)
