"""`tltpipe doctor`: is this machine ready to run a pipeline? One line per check, ok / warn / fail,
each problem with its fix. Gathering facts (``gather``) is separate from judging them (``judge``,
pure), so every verdict is tested without Docker or a GPU.

What is checked depends on the runner: the Docker engine, its NVIDIA runtime, shm and the images
for `docker`; the TAO commands the plan runs, on PATH, for `local`. GPUs, disk, write access and
the key are checked for every runner.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tlt_pipe.registry import DEFAULT_TOOLKIT

Level = Literal["ok", "warn", "fail"]

GIB = 1 << 30
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "level": self.level, "detail": self.detail, "fix": self.fix}


@dataclass
class Facts:
    """What doctor found; None means it could not be found out."""

    runner: str = "docker"  # registry.RUNNERS
    commands: dict[str, bool] = field(default_factory=dict)  # local runner: command -> found on PATH
    engine: dict[str, Any] | None = None
    engine_error: str | None = None
    gpus_requested: bool = True
    gpu_names: list[str] | None = None  # from nvidia-smi -L; None when there is no nvidia-smi
    shm_size: str = "16G"
    run_dir: Path = Path("runs")
    free_bytes: int | None = None
    writable: bool = False
    write_error: str = ""
    images: dict[str, bool | None] = field(default_factory=dict)  # image -> present locally (None: unknown)
    key_set: bool = False
    key_required: bool = False
    toolkit: str = DEFAULT_TOOLKIT


def size_bytes(text: str) -> int | None:
    """Docker's size strings: 16G, 512m, 1g, 1024 (bytes)."""
    match = _SIZE.match(str(text))
    if match is None:
        return None
    scale = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def judge(facts: Facts) -> list[Check]:
    checks = _docker_checks(facts) if facts.runner == "docker" else _local_checks(facts)
    return checks + _host_checks(facts)


def _local_checks(facts: Facts) -> list[Check]:
    checks = []
    for command, found in facts.commands.items():
        if found:
            checks.append(Check("command", "ok", f"{command} is on PATH"))
        else:
            checks.append(Check("command", "fail", f"{command} is not on PATH (the local runner runs TAO's "
                                                   "commands on this machine)",
                                f"install TAO's {command} here, or use runner.kind: docker"))
    return checks


def _docker_checks(facts: Facts) -> list[Check]:
    checks: list[Check] = []
    engine = facts.engine
    if engine is None:
        checks.append(Check("docker", "fail", f"engine not reachable: {facts.engine_error}",
                            "start dockerd (systemctl start docker) and add this user to the docker group, "
                            "or set DOCKER_HOST"))
    else:
        checks.append(Check("docker", "ok", f"engine {engine.get('version')} (API {engine.get('api_version')}) "
                                            f"at {engine.get('endpoint')}"))
        runtimes = engine.get("runtimes") or []
        if "nvidia" in runtimes:
            checks.append(Check("nvidia runtime", "ok", f"runtimes: {', '.join(runtimes)}"))
        elif facts.gpus_requested:
            checks.append(Check("nvidia runtime", "fail", f"no nvidia runtime (runtimes: {', '.join(runtimes) or '-'})",
                                "install the NVIDIA Container Toolkit and restart dockerd, or set runner.gpus: 0 "
                                "to run without a GPU"))
        else:
            checks.append(Check("nvidia runtime", "ok", "not needed: the config asks for no GPU (runner.gpus)"))
    shm = size_bytes(facts.shm_size)
    if shm is None:
        checks.append(Check("shm", "fail", f"docker.shm_size {facts.shm_size!r} is not a size", "write e.g. 16G"))
    elif shm < 2 * GIB:
        checks.append(Check("shm", "warn", f"shm_size {facts.shm_size}: data loaders may crash (bus error)",
                            "set docker.shm_size: 16G (TAO's recommendation)"))
    else:
        checks.append(Check("shm", "ok", f"shm_size {facts.shm_size}"))
    for image, present in facts.images.items():
        if present:
            checks.append(Check("image", "ok", f"{image} is present"))
        elif present is None:
            checks.append(Check("image", "warn", f"{image}: unknown (no engine)"))
        else:
            checks.append(Check("image", "warn", f"{image} is not present locally (tltpipe pulls it before the run)",
                                f"docker login nvcr.io && docker pull {image}"))
    return checks


def _host_checks(facts: Facts) -> list[Check]:
    checks: list[Check] = []
    if facts.gpu_names:
        checks.append(Check("gpus", "ok", f"{len(facts.gpu_names)}: {'; '.join(facts.gpu_names)}"))
    elif facts.gpus_requested:
        checks.append(Check("gpus", "warn", "no GPU found (nvidia-smi missing or lists none)",
                            "install the NVIDIA driver; TAO training needs a GPU"))
    else:
        checks.append(Check("gpus", "ok", "none, and none requested"))
    if facts.free_bytes is None:
        checks.append(Check("disk", "warn", f"cannot tell the free space for {facts.run_dir}"))
    else:
        free = f"{facts.free_bytes / GIB:.1f} GiB free for {facts.run_dir}"
        if facts.free_bytes < GIB:
            checks.append(Check("disk", "fail", free, "free some space: checkpoints and TFRecords need several GiB"))
        elif facts.free_bytes < 20 * GIB:
            checks.append(Check("disk", "warn", free, "a full run may need 20 GiB or more"))
        else:
            checks.append(Check("disk", "ok", free))
    if facts.writable:
        checks.append(Check("write", "ok", f"{facts.run_dir} is writable"))
    else:
        checks.append(Check("write", "fail", f"cannot write to {facts.run_dir}: {facts.write_error}",
                            "choose another --run-dir, or fix the folder's owner and permissions"))
    if facts.key_set:
        checks.append(Check("key", "ok", "TLTPIPE_KEY is set"))
    elif facts.key_required:
        checks.append(Check("key", "fail", f"TLTPIPE_KEY is not set; TAO {facts.toolkit} encrypts models with a key",
                            "export TLTPIPE_KEY=<the key of your pretrained model, or a new one>"))
    else:
        checks.append(Check("key", "warn", f"TLTPIPE_KEY is not set (TAO {facts.toolkit} models are not encrypted)",
                            "export TLTPIPE_KEY=<key> if your models are encrypted"))
    return checks


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def probe_writable(run_dir: Path) -> tuple[bool, str]:
    target = _existing(run_dir)
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".tltpipe-doctor-"):
            pass
    except OSError as exc:
        return False, exc.strerror or str(exc)
    return True, ""


def gpu_names() -> list[str] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.strip() for line in out.splitlines() if line.startswith("GPU ")]


def gather(runner: Any, *, kind: str = "docker", images: list[str], commands: list[str] = (), gpus_requested: bool,
           shm_size: str, run_dir: Path, key_required: bool, toolkit: str) -> Facts:
    """Ask the runner (the Docker engine; for the local runner, PATH), the host and the environment."""
    from tlt_pipe.errors import TltPipeError

    facts = Facts(runner=kind, gpus_requested=gpus_requested, shm_size=shm_size, run_dir=run_dir,
                  key_required=key_required, toolkit=toolkit, key_set=bool(os.environ.get("TLTPIPE_KEY")))
    if kind == "local":
        facts.commands = {command: shutil.which(command) is not None for command in dict.fromkeys(commands)}
    else:
        try:
            facts.engine = runner.engine_info()
        except TltPipeError as exc:
            facts.engine_error = str(exc)
        for image in images:
            try:
                facts.images[image] = runner.image_id(image) is not None if facts.engine else None
            except TltPipeError:
                facts.images[image] = None
    facts.gpu_names = gpu_names()
    try:
        facts.free_bytes = shutil.disk_usage(_existing(run_dir)).free
    except OSError:
        facts.free_bytes = None
    facts.writable, facts.write_error = probe_writable(run_dir)
    return facts
