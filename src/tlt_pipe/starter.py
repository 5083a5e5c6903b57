"""`tltpipe init`: a commented starter config with the tutorials' defaults."""

from __future__ import annotations

from tlt_pipe.specs import render_template
from tlt_pipe.toolkits import get_toolkit


def starter_config(network: str, *, toolkit: str = "5.0", dataset_format: str = "kitti",
                   dataset_path: str = "data/plates", name: str | None = None) -> str:
    kit = get_toolkit(toolkit)
    return render_template("config.yaml.j2", {
        "network": network, "toolkit": kit.version, "key_required": kit.key_required,
        "dataset_format": dataset_format, "dataset_path": dataset_path, "name": name or f"{network}-run",
    })
