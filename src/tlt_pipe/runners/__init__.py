"""Runners: the only code that talks to an execution system. `runner_for` builds the one a config asks
for; `runner_of_kind` one of each kind (registry.RUNNERS) with its defaults, for commands that look
after every runner (tltpipe gc)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tlt_pipe.config import Config
    from tlt_pipe.runners.base import Runner


def runner_of_kind(kind: str, *, search: Iterable[Path] = ()) -> "Runner":
    """A runner of one kind with its defaults (search: where the local runner looks for run directories)."""
    if kind == "local":
        from tlt_pipe.runners.local import LocalRunner

        return LocalRunner(search=search)
    if kind == "docker":
        from tlt_pipe.runners.docker import DockerRunner

        return DockerRunner()
    if kind == "slurm":
        from tlt_pipe.config import SlurmConfig
        from tlt_pipe.runners.slurm import SlurmRunner

        return SlurmRunner(SlurmConfig())
    raise ValueError(f"unknown runner kind {kind!r}")


def runner_for(config: "Config") -> "Runner":
    """The runner of a config's runner.kind: local runs on this machine; docker in the TAO images."""
    if config.runner.kind == "local":
        return runner_of_kind("local")
    if config.runner.kind == "slurm":
        from tlt_pipe.runners.slurm import SlurmRunner

        return SlurmRunner(config.runner.slurm, shm_size=config.docker.shm_size, user=config.docker.user)
    return docker_runner(config)


def docker_runner(config: "Config") -> "Runner":
    """The Docker runner set up from a config's runner (GPUs) and docker sections."""
    from tlt_pipe.runners.docker import DockerRunner

    docker = config.docker
    return DockerRunner(gpus=config.runner.gpus, shm_size=docker.shm_size, ulimits=dict(docker.ulimits), user=docker.user,
                        tty=docker.tty, network=docker.network, privileged=docker.privileged, ports=docker.ports)
