from __future__ import annotations

from pathlib import Path

import pytest

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
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "resnet_18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\nweights")
        path = tmp_path / "lpd.yaml"
        path.write_text(BASE.format(toolkit=toolkit) + extra, encoding="utf-8")
        return path

    return write
