"""`tltpipe doctor`: is this machine ready to run a pipeline? One line per check, ok / warn / fail,
each problem with its fix. Gathering facts (``gather``) is separate from judging them (``judge``,
pure), so every verdict is tested without Docker or a GPU.

What is checked depends on the runner: the Docker engine, its NVIDIA runtime, shm and the images
for `docker`; the TAO commands the plan runs, on PATH, for `local`; for `slurm`, its commands, the
partition, and whether the run directory is on a filesystem the nodes share. GPUs, disk, write access and
the key are checked for every runner.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tlt_pipe.registry import DEFAULT_TOOLKIT

Level = Literal["ok", "warn", "fail"]

GIB = 1 << 30
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([bkmg]?)b?$", re.IGNORECASE)  # as the Docker SDK reads them


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
    partitions: dict[str, str] | None = None  # slurm: partition -> state (sinfo; a default one ends in *)
    partition: str | None = None  # slurm: the one runner.slurm.partition names (None: the default)
    nodes: list[str] = field(default_factory=list)  # slurm: the cluster's nodes
    filesystem: str | None = None  # slurm: the run directory's filesystem type (stat -f)
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
    scale = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def judge(facts: Facts) -> list[Check]:
    by_runner = {"docker": _docker_checks, "local": _local_checks, "slurm": _slurm_checks}
    return by_runner[facts.runner](facts) + _host_checks(facts)


SHARED_FILESYSTEMS = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb2", "fuse.sshfs", "ceph", "fuse.ceph",
                      "panfs", "wekafs", "fuse.glusterfs")


def _slurm_checks(facts: Facts) -> list[Check]:
    missing = [c for c, found in facts.commands.items() if not found]
    if missing:
        return [Check("slurm", "fail", f"{', '.join(missing)} not on PATH",
                      "run tltpipe on a Slurm login node, or install the Slurm client (slurm-client)")]
    checks = [Check("slurm", "ok", f"{', '.join(facts.commands)} on PATH")]
    if facts.partitions is None:
        checks.append(Check("partition", "fail", "sinfo gave no partitions (is slurmctld reachable?)",
                            "check `sinfo`; see the cluster's administrator"))
    else:
        default = next((p.rstrip("*") for p in facts.partitions if p.endswith("*")), None)
        wanted = facts.partition or default
        known = {p.rstrip("*"): state for p, state in facts.partitions.items()}
        if wanted is None:
            checks.append(Check("partition", "fail", "the cluster has no default partition",
                                f"set runner.slurm.partition (one of {', '.join(known)})"))
        elif wanted not in known:
            checks.append(Check("partition", "fail", f"no partition {wanted!r}",
                                f"set runner.slurm.partition to one of {', '.join(known)}"))
        else:
            level = "ok" if known[wanted] == "up" else "fail"
            checks.append(Check("partition", level, f"{wanted} is {known[wanted]}", "see `sinfo`"))
    fs = facts.filesystem or "unknown"
    if fs in SHARED_FILESYSTEMS:
        checks.append(Check("shared run dir", "ok", f"{facts.run_dir} is on {fs}"))
    elif len(facts.nodes) == 1 and facts.nodes[0] == socket.gethostname().split(".")[0]:
        checks.append(Check("shared run dir", "ok", f"{facts.run_dir} is on {fs}; the cluster is this one node"))
    else:
        checks.append(Check("shared run dir", "warn", f"{facts.run_dir} is on {fs}, which may not be shared with "
                                                      "the nodes: every job reads and writes the run directory",
                            "put runs on the cluster's shared filesystem (--run-dir)"))
    return checks


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


def _gather_slurm(facts: Facts, settings: Any) -> None:
    facts.commands = {c: shutil.which(c) is not None for c in ("sbatch", "squeue", "scontrol", "scancel")}
    facts.partition = getattr(settings, "partition", None)
    try:  # one row per node and partition
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P|%a|%N"], capture_output=True, text=True, timeout=30)
        rows = [line.split("|") for line in out.stdout.splitlines() if line.count("|") == 2]
        facts.partitions = {p: state for p, state, _ in rows} if out.returncode == 0 and rows else None
        facts.nodes = sorted({node for _, _, node in rows})
    except (OSError, subprocess.TimeoutExpired):
        facts.partitions = None
    try:
        fs = subprocess.run(["stat", "-f", "-c", "%T", str(_existing(facts.run_dir))], capture_output=True,
                            text=True, timeout=30)
        facts.filesystem = fs.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        facts.filesystem = None


def gather(runner: Any, *, kind: str = "docker", images: list[str], commands: list[str] = (), gpus_requested: bool,
           shm_size: str, run_dir: Path, key_required: bool, toolkit: str) -> Facts:
    """Ask the runner (the Docker engine; for the local runner, PATH), the host and the environment."""
    from tlt_pipe.errors import TltPipeError

    facts = Facts(runner=kind, gpus_requested=gpus_requested, shm_size=shm_size, run_dir=run_dir,
                  key_required=key_required, toolkit=toolkit, key_set=bool(os.environ.get("TLTPIPE_KEY")))
    if kind == "local":
        facts.commands = {command: shutil.which(command) is not None for command in dict.fromkeys(commands)}
    elif kind == "slurm":
        _gather_slurm(facts, getattr(runner, "settings", None))
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
