"""Every YAML spec tltpipe writes for TAO's PyTorch networks (rtdetr, dino), in every stage and variant, merged
into NVIDIA's own ExperimentConfig (nvidia-tao-core 7.3.0, read from the cache at test time): an unknown key
or a wrong type there is what the task's Hydra would refuse."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conformance.matrix import RESULTS
from tests.reference.pyt_schema_table import merge_problems
from tlt_pipe.api import Quiet
from tlt_pipe.config import parse_config
from tlt_pipe.networks import NETWORKS
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import Selection

PYT = [name for name, network in NETWORKS.items() if network.framework == "tao_pyt"]
VARIANTS = {
    "fp32": "",
    "int8": "engine: {data_type: int8, workspace_mb: 2048, opt_batch_size: 2, max_batch_size: 4}\n",
    "resume": "",
    "overrides": "spec_overrides:\n  experiment: {dataset.pin_memory: false}\n  train: {train.optim.lr: 0.0002, "
                 "train.clip_grad_norm: 0.5}\n  export: {export.opset_version: 16}\n",
    "images": "inference: {images: pictures, threshold: 0.25}\nrunner: {gpus: [0, 1]}\n",
}


def _checkpoint(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"weights")


def _specs(tmp_path: Path, network: str, variant: str) -> dict[str, str]:
    (tmp_path / "data").mkdir()
    (tmp_path / "pictures").mkdir()
    runner = "" if "runner:" in VARIANTS[variant] else "runner: {gpus: 0}\n"
    text = (f"network: {network}\nname: c\ndataset: {{path: data, classes: {{plate: lpd}}}}\n"
            "train: {epochs: 4, batch_size: 2}\n" + runner + VARIANTS[variant])
    config = parse_config(text, source="c.yaml", base_dir=tmp_path)
    if variant == "resume":
        _checkpoint(tmp_path / "run" / "train" / "model_epoch_000.pth")
    steps = Pipeline(config, tmp_path / "run", key="k3y-conformance", events=Quiet()).dry_run(
        Selection(resume=variant == "resume"))
    specs = {path: text for step in steps for path, text in step.plan.specs.items() if path.endswith(".yaml")}
    assert len(specs) == 7, sorted(specs)  # every stage but prepare
    return specs


@pytest.mark.parametrize("network", PYT)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_nvidias_experiment_config_accepts_every_spec(tmp_path, network, variant):
    problems = []
    for path, text in _specs(tmp_path, network, variant).items():
        problems += [f"{path}: {p}" for p in merge_problems(network, yaml.safe_load(text))]
    RESULTS[(network, "6.26.3", variant)] = "FAIL" if problems else "pass"
    assert not problems, "\n".join(problems)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYT_EXAMPLES = [p for p in sorted(EXAMPLES.glob("*.yaml"))
                if NETWORKS[yaml.safe_load(p.read_text(encoding="utf-8"))["network"]].framework == "tao_pyt"]


@pytest.mark.parametrize("example", PYT_EXAMPLES, ids=lambda p: p.name)
def test_every_pytorch_example_is_accepted(tmp_path, example):
    config = parse_config(example.read_text(encoding="utf-8"), source=example.name, base_dir=tmp_path,
                          sets=["runner.gpus=0"])
    (tmp_path / "data" / "crpd").mkdir(parents=True)
    steps = Pipeline(config, tmp_path / "run", key="k3y-conformance", events=Quiet()).dry_run(Selection())
    problems = [f"{path}: {p}" for step in steps for path, text in step.plan.specs.items() if path.endswith(".yaml")
                for p in merge_problems(config.network, yaml.safe_load(text))]
    RESULTS[(config.network, config.toolkit, f"examples/{example.name}")] = "FAIL" if problems else "pass"
    assert PYT_EXAMPLES and not problems, "\n".join(problems)


@pytest.mark.parametrize("network", PYT)
def test_the_merge_is_not_blind(network):
    """An unknown key and a wrong type are refused by NVIDIA's classes, as by Hydra in the task."""
    assert merge_problems(network, {"train": {"num_epochs": 3}}) == []
    assert merge_problems(network, {"train": {"num_epochz": 3}})
    assert merge_problems(network, {"train": {"num_epochs": "three"}})
