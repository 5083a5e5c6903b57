"""Every file in examples/ runs end to end, as written, on the bundled sample and the emulator images.

Only what a machine without a GPU or NVIDIA's registry must change is set on the command line, as
`make demo` does: the images, no GPU, and limits an unprivileged Docker engine accepts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tlt_pipe.networks import NETWORKS

from tltpipe_cli import EXAMPLES, example_sets, examples_folder, manifest, tltpipe

pytestmark = pytest.mark.docker
# The TAO examples (the pytorch-ssd one runs through tests/pytorch_ssd in test_pytorch_ssd.py).
TAO_EXAMPLES = [p.name for p in sorted(EXAMPLES.glob("*.yaml"))
                if NETWORKS[yaml.safe_load(p.read_text(encoding="utf-8"))["network"]].framework == "tao"]


# TAO's PyTorch networks (rtdetr, dino): their own chain, in the PyTorch and Deploy images.
PYT_EXAMPLES = [p.name for p in sorted(EXAMPLES.glob("*.yaml"))
                if NETWORKS[yaml.safe_load(p.read_text(encoding="utf-8"))["network"]].framework == "tao_pyt"]


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    """A folder laid out like examples/: the sample data under data/, the example files beside it."""
    return examples_folder(tmp_path_factory.mktemp("examples"))


@pytest.mark.parametrize("runner", ["docker", pytest.param("slurm", marks=pytest.mark.slurm)])
@pytest.mark.parametrize("example", TAO_EXAMPLES)
def test_example_runs_end_to_end_on_the_emulator(emulator_images, sample_dir, tmp_path, example, runner):
    config = sample_dir / example
    shutil.copy(EXAMPLES / example, config)
    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    toolkit = str(written["toolkit"])
    images = emulator_images[toolkit]
    run_dir = tmp_path / "run"
    args = [arg for item in example_sets(images, runner) for arg in ("--set", item)]
    done = tltpipe("run", written["network"], "--config", str(config), "--run-dir", str(run_dir), *args, cwd=sample_dir, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    stages = manifest(run_dir)["stages"]
    assert stages and all(s["status"] == "succeeded" for s in stages.values()), {n: s["status"] for n, s in stages.items()}
    assert stages["inference"]["metrics"]["images"] > 0
    built = stages["engine"]["metrics"]["provenance"]  # read in the image that built the engine
    assert built["gpu"] == "tltpipe emulator GPU" and built["tensorrt"] and built["precision"] == stages["engine"]["metrics"]["precision"]
    if "evaluate_engine" in stages:  # the engine's mAP beside the retrained model's (not TLT 2.0's DetectNet_v2)
        measured = stages["evaluate_engine"]["metrics"]
        assert 0 < measured["mAP"] <= 1 and measured["mAP_drop"] == round(measured["model_mAP"] - measured["mAP"], 6)
        assert measured["ran_on"] == {k: built[k] for k in ("gpu", "compute_capability", "tensorrt")}
    assert stages["inference_engine"]["metrics"]["images"] == stages["inference"]["metrics"]["images"]
    if runner == "docker":  # the report draws both models' detections on the test images
        report = tltpipe("report", str(run_dir), cwd=sample_dir)
        assert report.returncode == 0, report.stderr
        assert all((run_dir / "report" / f"{s}.png").stat().st_size > 0 for s in ("inference", "inference_engine"))
    bundle = stages["deepstream"]  # the DeepStream bundle of the example, with its network's output layers
    assert bundle["metrics"]["network_mode"] == written.get("engine", {}).get("data_type", "fp32")
    assert bundle["metrics"]["output_blobs"] in ("NMS", "BatchedNMS", "output_cov/Sigmoid;output_bbox/BiasAdd",
                                                 "output_cov/Sigmoid:0;output_bbox/BiasAdd:0")
    assert (run_dir / bundle["artifacts"]["infer_config"]).is_file() and (run_dir / bundle["artifacts"]["app_config"]).is_file()
    if runner == "slurm":  # every container stage names its job, and a re-run skips every stage
        jobs = {n: s.get("job") for n, s in stages.items() if s.get("image")}
        assert jobs and all(j and j["runner"] == "slurm" and j["state"] == "COMPLETED" for j in jobs.values()), jobs
        again = tltpipe("run", written["network"], "--config", str(config), "--run-dir", str(run_dir), *args,
                        "--plain", cwd=sample_dir)
        assert again.returncode == 0 and again.stdout.count("skipped, up to date") == len(stages), again.stdout


@pytest.mark.parametrize("example", PYT_EXAMPLES)
def test_pytorch_example_runs_end_to_end_then_skips_every_stage(emulator_images, sample_dir, tmp_path, example):
    config = sample_dir / example
    shutil.copy(EXAMPLES / example, config)
    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    images = emulator_images[str(written["toolkit"])]
    run_dir = tmp_path / "run"
    args = [arg for item in example_sets(images, pytorch=True) for arg in ("--set", item)]
    key = "pyt-Secr3t-k3y-for-tests"
    command = ("run", written["network"], "--config", str(config), "--run-dir", str(run_dir), *args, "--plain")
    done = tltpipe(*command, cwd=sample_dir, timeout=600, key=key)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    stages = manifest(run_dir)["stages"]
    assert list(stages) == ["prepare", "train", "evaluate", "export", "engine", "evaluate_engine", "inference",
                            "inference_engine"]
    assert all(s["status"] == "succeeded" for s in stages.values()), {n: s["status"] for n, s in stages.items()}
    assert stages["train"]["image"] == images["pyt_image"] and stages["engine"]["image"] == images["deploy_image"]
    assert 0 < stages["evaluate"]["metrics"]["mAP"] <= 1 and 0 < stages["evaluate_engine"]["metrics"]["mAP"] <= 1
    assert (run_dir / "data" / "coco" / "train" / "annotations.json").is_file()
    built = stages["engine"]["metrics"]["provenance"]  # read in the image that built the engine
    assert built["gpu"] == "tltpipe emulator GPU" and built["tensorrt"]
    assert stages["evaluate_engine"]["metrics"]["ran_on"] == {k: built[k] for k in ("gpu", "compute_capability", "tensorrt")}
    leaked = [str(p) for p in run_dir.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == [] and key not in done.stdout + done.stderr
    again = tltpipe(*command, cwd=sample_dir, timeout=600, key=key)
    assert again.returncode == 0 and again.stdout.count("skipped, up to date") == len(stages), again.stdout
    for command in (("show", str(run_dir)), ("report", str(run_dir))):
        shown = tltpipe(*command, cwd=sample_dir)
        assert shown.returncode == 0, shown.stderr
