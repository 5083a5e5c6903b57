"""The registries are the one list of networks, dataset formats and stages; the command line
loads nothing else before it knows which command runs."""

from __future__ import annotations

import json
import subprocess
import sys

from tlt_pipe import registry


def test_registries_match_what_implements_them():
    from tlt_pipe.datasets.formats import FORMATS
    from tlt_pipe.networks import NETWORKS
    from tlt_pipe.planner import ALL_STAGES, CHAINS

    assert set(registry.NETWORKS) == set(NETWORKS)
    assert registry.DATASET_FORMATS == FORMATS
    assert registry.STAGE_NAMES == (*(stage.name for stage in ALL_STAGES), "detectnet")  # TAO's, then pytorch-ssd's
    assert set(CHAINS) == {n.framework for n in NETWORKS.values()}
    from tlt_pipe.sweeps import EVALUATIONS

    assert set(EVALUATIONS) <= set(registry.SCORED_STAGES) <= set(registry.STAGE_NAMES)
    from tlt_pipe.toolkits import TOOLKITS

    assert registry.DEFAULT_TOOLKIT in TOOLKITS


def test_the_command_line_starts_without_the_core():
    """--help and shell completion must not pay for the config, the planner, the converters or rich."""
    code = ("import sys, json, tlt_pipe.cli; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('tlt_pipe', 'rich', 'pydantic', "
            "'jinja2', 'google', 'docker', 'PIL', 'yaml')))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == ["tlt_pipe", "tlt_pipe.cli", "tlt_pipe.datasets", "tlt_pipe.datasets.command",
                      "tlt_pipe.datasets.options", "tlt_pipe.errors", "tlt_pipe.registry"]


def test_the_readme_table_of_networks_and_toolkits_matches_the_registry():
    """Each row of the README's network x toolkit table marks exactly the toolkits that ship its networks."""
    from pathlib import Path

    from tlt_pipe.networks import NETWORKS
    from tlt_pipe.toolkits import TOOLKITS

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    header = "| network | " + " | ".join(f'`"{v}"`' for v in TOOLKITS) + " |"
    assert header in text, "the README's network x toolkit table lacks a toolkit"
    rows = text.split(header, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    listed = set()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = [n.strip() for n in cells[0].split(",")]
        listed.update(names)
        for name in names:
            shipped = [bool(c) for c in cells[1:]]
            assert shipped == [v in NETWORKS[name].toolkits for v in TOOLKITS], name
    assert listed == {n for n, net in NETWORKS.items() if net.framework != "pytorch_ssd"}
