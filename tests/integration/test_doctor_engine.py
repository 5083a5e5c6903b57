"""tltpipe doctor against the real Docker engine and the emulator images."""

from __future__ import annotations

import json

import pytest

from tltpipe_cli import tltpipe, write_config

pytestmark = pytest.mark.docker


def test_doctor_on_this_engine(emulator_images, sample, tmp_path):  # noqa: F811
    config = write_config(sample, emulator_images, "5.0")
    result = tltpipe("doctor", "--config", str(config), "--run-dir", str(tmp_path / "runs"), "--json", cwd=tmp_path)
    checks = {(c["check"], c["detail"].split(" ")[0]): c for c in map(json.loads, result.stdout.splitlines())}
    levels = {name: c["level"] for (name, _), c in checks.items()}
    assert levels["docker"] == "ok" and levels["write"] == "ok" and levels["key"] == "ok"
    assert levels["nvidia runtime"] == "ok"  # gpus: 0 in the config
    assert checks[("image", emulator_images["5.0"]["image"])]["level"] == "ok"
    assert levels["shm"] == "warn"  # 1G in the test config
    assert result.returncode == (1 if "fail" in levels.values() else 0), result.stdout
