"""Driving the real tltpipe CLI against the emulator images, shared by the integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

KEY = "tlt-Secr3t-k3y-for-tests"
# On Slurm (make test-slurm): every container stage a batch job on the one-node cluster.
SLURM_SETS = ["runner.kind=slurm", "runner.slurm.gpus=0", "runner.slurm.poll_s=0.5", "runner.slurm.time=00:20:00"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def examples_folder(root: Path) -> Path:
    """root laid out like examples/: the bundled sample made under data/ (the caller copies example files beside it)."""
    subprocess.run([sys.executable, str(EXAMPLES / "make_sample.py"), "--out", str(root / "data")], check=True,
                   capture_output=True, timeout=300)
    return root


def example_sets(images: dict, runner: str = "docker", *, pytorch: bool = False) -> list[str]:
    """What an example needs changed on a machine without a GPU or NVIDIA's registry, as `make demo` sets it: the
    emulator images (pytorch: the PyTorch image for runner.image, as rtdetr and dino run), no GPU, limits an
    unprivileged Docker engine accepts (and, on Slurm, a job per stage)."""
    image = images["pyt_image"] if pytorch else images["image"]
    sets = [f"runner.image={image}", f"runner.deploy_image={json.dumps(images['deploy_image'])}",
            "runner.gpus=0", "docker.ulimits={memlock: 8388608, stack: 67108864}", "docker.shm_size=1G"]
    return sets + (SLURM_SETS if runner == "slurm" else [])
STAGES = ["prepare", "tfrecords", "train", "evaluate", "prune", "retrain", "evaluate_retrain", "export",
          "engine", "evaluate_engine", "inference", "inference_engine", "deepstream"]

CONFIG = """\
network: ssd
toolkit: "{toolkit}"
name: lpd
dataset: {{format: crpd, path: crpd, classes: {{lpd: lpd}}, val_split: 25}}
model: {{arch: resnet, nlayers: 18, input_width: 320, input_height: 320, pretrained: resnet_18.hdf5}}
train: {{epochs: 6, batch_size: 4, validation_period: 2}}
prune: {{threshold: 0.1, equalization: intersection}}
retrain: {{epochs: 4}}
inference: {{threshold: 0.4}}
runner:
  gpus: 0
  image: "{image}"
  deploy_image: {deploy}
  env: {env}
docker:
  shm_size: 1G
  ulimits: {{memlock: 8388608, stack: 67108864}}   # an unprivileged engine cannot raise memlock further

"""


def write_config(folder: Path, images: dict, toolkit: str, env: dict | None = None, extra: str = "",
                 filename: str | None = None) -> Path:
    """A config for the sample in folder (crpd/, resnet_18.hdf5) that runs on the emulator images."""
    deploy = json.dumps(images[toolkit]["deploy_image"]) if images[toolkit]["deploy_image"] else "null"
    text = CONFIG.format(toolkit=toolkit, image=images[toolkit]["image"], deploy=deploy, env=json.dumps(env or {}))
    path = folder / (filename or f"lpd-{toolkit}.yaml")
    path.write_text(text + extra, encoding="utf-8")
    return path


def cli_env(key: str | None = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TLTPIPE_KEY"}
    if key:
        env["TLTPIPE_KEY"] = key
    env["NO_COLOR"] = "1"
    return env


def tltpipe(*args: str, cwd: Path, key: str | None = KEY, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI as a user would, capturing its output (env: variables added to its environment)."""
    return subprocess.run([sys.executable, "-m", "tlt_pipe", *args], cwd=cwd, env={**cli_env(key), **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def start_tltpipe(*args: str, cwd: Path, key: str | None = KEY) -> subprocess.Popen:
    """Start the real CLI in the background (its own process group, so signals reach only it)."""
    return subprocess.Popen([sys.executable, "-m", "tlt_pipe", *args], cwd=cwd, env=cli_env(key),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_until(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def stage_status(run_dir: Path, stage: str) -> str | None:
    try:
        return manifest(run_dir)["stages"].get(stage, {}).get("status")
    except (FileNotFoundError, ValueError):
        return None


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def containers_labelled(run_dir: Path) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=tltpipe.run={run_dir}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def assert_no_secret(run_dir: Path, *texts: str) -> None:
    for text in texts:
        assert KEY not in text
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the key leaked into {path}"


