"""The GPU and TensorRT lines an engine stage prints first, and the warning for an engine on another machine."""

from __future__ import annotations

import subprocess

import pytest

import tlt_pipe
from fake_runner import KEY, FakeRunner
from tlt_pipe import provenance
from tlt_pipe.manifest import load_manifest


def test_the_probe_runs_the_command_in_its_place_and_keeps_its_exit_code(tmp_path):
    done = subprocess.run(provenance.probed(["sh", "-c", "echo task output; exit 3"]), capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout.splitlines()[-1] == "task output"
    assert provenance.parse(done.stdout).keys() <= {"gpu", "compute_capability", "tensorrt"}  # what this machine has


def test_parse_reads_the_first_gpu_and_leaves_out_what_is_missing():
    log = (f"{provenance.TAG} gpu: NVIDIA H200, 9.0\n{provenance.TAG} gpu: NVIDIA H200, 9.0\n"
           f"{provenance.TAG} tensorrt: 10.3.0\nsome line\n")
    assert provenance.parse(log) == {"gpu": "NVIDIA H200", "compute_capability": "9.0", "tensorrt": "10.3.0"}
    assert provenance.parse(f"{provenance.TAG} gpu: Tesla T4\n") == {"gpu": "Tesla T4"}  # an old driver
    assert provenance.parse("no probe here") == {}


def test_a_different_gpu_or_tensorrt_is_a_warning_and_unknown_is_not():
    built = {"gpu": "NVIDIA A100", "compute_capability": "8.0", "tensorrt": "8.6.1", "precision": "int8"}
    warning = provenance.different_machine(built, {"gpu": "Tesla T4", "compute_capability": "7.5", "tensorrt": "8.6.1"})
    assert "GPU NVIDIA A100 -> Tesla T4" in warning and "compute capability 8.0 -> 7.5" in warning
    assert "TensorRT" not in warning.split("(")[1].split(")")[0]
    assert provenance.different_machine(built, {"gpu": "NVIDIA A100", "tensorrt": "8.6.1"}) is None
    assert provenance.different_machine(built, {}) is None  # nothing known where it ran
    assert provenance.different_machine("<engine.provenance>", {"gpu": "x"}) is None  # not built yet


@pytest.mark.usefixtures("emulated_tao")
def test_an_engine_run_on_another_gpu_says_so_in_the_manifest(emulated_config, tmp_path):
    config = emulated_config
    run_dir = tmp_path / "run"
    tlt_pipe.run(config, run_dir=run_dir, runner=FakeRunner(), key=KEY, stages=(None, "engine"))
    elsewhere = config.model_copy(update={"runner": config.runner.model_copy(update={"env": {"TAO_EMU_GPU": "Tesla T4, 7.5"}})})
    manifest = tlt_pipe.run(elsewhere, run_dir=run_dir, runner=FakeRunner(), key=KEY, stages="evaluate_engine")
    record = manifest.stages["evaluate_engine"]
    assert record.status == "succeeded" and record.metrics["ran_on"]["gpu"] == "Tesla T4"
    assert len(record.warnings) == 1 and "GPU fake GPU -> Tesla T4" in record.warnings[0]
    assert load_manifest(run_dir).stages["evaluate_engine"].warnings == record.warnings
