"""~/.tao_mounts.json, the file NVIDIA's `tao` launcher reads, honoured for users moving to tltpipe.

Envs and DockerOptions carry over. Mounts do not need to: tltpipe mounts the run directory and
every input itself and translates the paths, so nobody writes a container path any more.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tlt_pipe.config import Config, is_env_name
from tlt_pipe.errors import ConfigError
from tlt_pipe.regular_file import read_text

_KEYS = {"Mounts", "Envs", "DockerOptions"}
_DOCKER_OPTIONS = {"user", "ports", "shm_size", "ulimits", "privileged", "network", "tty"}


@dataclass(frozen=True)
class LauncherSettings:
    env: dict[str, str] = field(default_factory=dict)
    docker: dict[str, Any] = field(default_factory=dict)  # DockerConfig field -> value
    mounts: int = 0  # how many Mounts entries (not needed by tltpipe)


def parse_launcher_mounts(text: str, source: str) -> LauncherSettings:
    """Validate the launcher's file as strictly as the launcher does: unknown keys are errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    except ValueError as exc:  # a number too long to convert, say
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object with Mounts, Envs, DockerOptions")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; the launcher accepts only Mounts, Envs, DockerOptions")
    if "Mounts" not in data:
        raise ConfigError(f"{source}: Mounts is required (as the launcher requires it)")
    env: dict[str, str] = {}
    if not isinstance(data.get("Envs") or [], list):
        raise ConfigError(f"{source}: Envs must be a list of {{\"variable\": ..., \"value\": ...}}")
    for i, item in enumerate(data.get("Envs") or []):
        if not isinstance(item, dict) or set(item) != {"variable", "value"}:
            raise ConfigError(f"{source}: Envs[{i}]: expected {{\"variable\": ..., \"value\": ...}}")
        name, value = item["variable"], item["value"]
        if not is_env_name(name):
            raise ConfigError(f"{source}: Envs[{i}].variable: expected a variable name, got {json.dumps(name)[:40]}")
        if value is None or isinstance(value, (list, dict)) or "\0" in str(value):
            raise ConfigError(f"{source}: Envs[{i}].value: expected a string or a number, got {json.dumps(value)[:40]}")
        env[name] = str(value)
    options = data.get("DockerOptions") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{source}: DockerOptions must be an object")
    bad = sorted(set(options) - _DOCKER_OPTIONS)
    if bad:
        raise ConfigError(f"{source}: DockerOptions.{bad[0]} is not an option the launcher accepts "
                          f"({', '.join(sorted(_DOCKER_OPTIONS))})")
    docker: dict[str, Any] = dict(options)
    if "ulimits" in docker:
        if not isinstance(docker["ulimits"], dict):
            raise ConfigError(f"{source}: DockerOptions.ulimits must map a name to a value")
        docker["ulimits"] = {str(k): _ulimit(v, f"{source}: DockerOptions.ulimits.{k}")
                             for k, v in docker["ulimits"].items()}
    mounts = data["Mounts"]
    if not isinstance(mounts, list):
        raise ConfigError(f"{source}: Mounts must be a list of {{source, destination}}")
    return LauncherSettings(env=env, docker=docker, mounts=len(mounts))


def _ulimit(value: Any, where: str) -> int:
    """A whole number, as the launcher passes it to Docker (soft = hard = value); -1 is unlimited."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or isinstance(value, float) and (
            not math.isfinite(value) or value != int(value)):
        raise ConfigError(f"{where}: expected a whole number (-1 for unlimited), got {json.dumps(value)[:40]}")
    return int(value)


def apply_launcher_mounts(config: Config, path: Path) -> tuple[Config, list[str]]:
    """The config with the file's Envs and DockerOptions filled in where the config does not set them;
    plus notes for the user."""
    try:
        path = Path(path).expanduser()
    except RuntimeError:  # ~name of a user this machine does not have
        raise ConfigError(f"{path}: no home folder for that ~user") from None
    try:
        text = read_text(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); the launcher's file is JSON") from None
    settings = parse_launcher_mounts(text, str(path))
    docker = config.docker
    chosen = {k: v for k, v in settings.docker.items() if k not in docker.model_fields_set}
    runner = config.runner.model_copy(update={"env": {**settings.env, **config.runner.env}})
    notes = []
    if settings.mounts:
        notes.append(f"{path}: its {settings.mounts} Mounts are not needed: tltpipe mounts the run directory and "
                     "every input itself")
    try:
        updated = docker.model_validate({**docker.model_dump(), **chosen})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"{path}: DockerOptions.{where}: {error['msg'].removeprefix('Value error, ')}") from None
    return config.model_copy(update={"docker": updated, "runner": runner}), notes
