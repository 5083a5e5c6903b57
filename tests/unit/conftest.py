from __future__ import annotations

from pathlib import Path

import pytest

import tlt_pipe
from fake_runner import EMULATOR, TOOLKIT
from tlt_pipe.datasets.sample import sample_crpd

BASE = """\
network: ssd
toolkit: "{toolkit}"
name: lpd
dataset:
  format: kitti
  path: data
  classes: {{plate: lpd}}
model: {{arch: resnet, nlayers: 18, input_width: 320, input_height: 320, pretrained: resnet_18.hdf5}}
train: {{epochs: 4, batch_size: 8, validation_period: 2}}
retrain: {{epochs: 3}}
runner: {{gpus: 0}}
"""


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a small valid config (and the files it points at) into tmp_path; returns its path."""

    def write(toolkit: str = "5.0", extra: str = "") -> Path:
        """extra's top-level keys replace the base's (a duplicate key is an error)."""
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "resnet_18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\nweights")
        path = tmp_path / "lpd.yaml"
        replaced = {line.split(":", 1)[0] for line in extra.splitlines() if line and not line[0].isspace()}
        blocks, keep = [], True
        for line in BASE.format(toolkit=toolkit).splitlines(keepends=True):
            if line and not line[0].isspace():
                keep = line.split(":", 1)[0] not in replaced
            if keep:
                blocks.append(line)
        path.write_text("".join(blocks) + extra, encoding="utf-8")
        return path

    return write


@pytest.fixture
def emulated_tao(monkeypatch):
    """The TAO emulator importable in process (fake_runner.FakeRunner), fast."""
    monkeypatch.syspath_prepend(str(EMULATOR))
    monkeypatch.setenv("TAO_EMU_VERSION", TOOLKIT)
    monkeypatch.setenv("TAO_EMU_ROLE", "tf")
    monkeypatch.setenv("TAO_EMU_EPOCH_SECONDS", "0")


@pytest.fixture
def emulated_config(tmp_path):
    """An SSD config (local runner) on a 12-image CRPD sample, for fake_runner.FakeRunner."""
    sample_crpd(tmp_path / "crpd", 12, 0)
    (tmp_path / "resnet_18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
    path = tmp_path / "lpd.yaml"
    path.write_text(f"network: ssd\ntoolkit: '{TOOLKIT}'\nname: lpd\n"
                    "dataset: {format: crpd, path: crpd, classes: {lpd: lpd}, val_split: 25}\n"
                    "model: {input_width: 320, input_height: 320, pretrained: resnet_18.hdf5}\n"
                    "train: {epochs: 4, batch_size: 4, validation_period: 2}\nretrain: {epochs: 2}\n"
                    "runner: {kind: local}\n", encoding="utf-8")
    return tlt_pipe.load_config(path)
