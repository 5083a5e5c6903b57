"""Where things are, on the host and in the container. Users never write a container path.

The run directory is mounted read-write at /tltpipe/run; each outside input (a pretrained model,
a folder of test images) read-only under /tltpipe/inputs/<name>.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tlt_pipe.task import Mount

RUN_MOUNT = PurePosixPath("/tltpipe/run")
INPUTS_MOUNT = PurePosixPath("/tltpipe/inputs")


@dataclass(frozen=True)
class Workspace:
    run_dir: Path  # absolute host path
    inputs: tuple[tuple[str, Path], ...] = ()  # (name, absolute host path), mounted read-only
    native: bool = False  # commands run on the host (the local runner): their paths are host paths

    def host(self, relative: str) -> Path:
        """The host path of a run-relative path."""
        return self.run_dir / relative

    def container(self, relative: str) -> str:
        """The container path of a run-relative path (a bare <stage.name> placeholder passes through)."""
        if relative.startswith("<"):
            return relative
        return str(self.run_dir / relative) if self.native else str(RUN_MOUNT / relative)

    def input_path(self, name: str) -> str:
        """The container path of a named outside input."""
        for input_name, host in self.inputs:
            if input_name == name:
                return str(host) if self.native else str(INPUTS_MOUNT / name / host.name)
        raise KeyError(name)

    def mounts(self) -> tuple[Mount, ...]:
        mounts = [Mount(self.run_dir, str(RUN_MOUNT))]
        for name, host in self.inputs:
            mounts.append(Mount(host, str(INPUTS_MOUNT / name / host.name), read_only=True))
        return tuple(mounts)
