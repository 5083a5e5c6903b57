"""The run record: runs/<name>/manifest.json, written atomically (temp file, fsync, rename).

One StageRecord per stage: status, times, image and image id, argv with secrets redacted, specs
with hashes, input fingerprints, outputs with size and hash, metrics, artifacts, exit code, log.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tlt_pipe.errors import ConfigError

MANIFEST = "manifest.json"
Status = Literal["pending", "running", "succeeded", "failed", "skipped", "interrupted"]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StageRecord(BaseModel):
    status: Status = "pending"
    reason: str | None = None
    started: str | None = None
    ended: str | None = None
    duration_s: float | None = None
    image: str | None = None
    image_id: str | None = None
    argv: list[str] = []
    specs: list[dict[str, Any]] = []  # {path, sha256}
    inputs: dict[str, Any] = {}  # fingerprint part name -> fingerprint
    outputs: list[dict[str, Any]] = []  # {path, kind, size, mtime_ns, sha256 | tree}
    metrics: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    exit_code: int | None = None
    oom_killed: bool = False
    log: str | None = None
    fingerprint: str | None = None
    error: str | None = None
    resumed_from: dict[str, Any] | None = None  # {epoch, checkpoint, reason} when training continued
    job: dict[str, Any] | None = None  # the batch job that ran it: {runner, id, node, state, exit_code}
    gpus: list[int] | None = None  # the GPUs it was given when stages ran side by side on a list of GPUs
    warnings: list[str] = []  # what the stage found worth a warning (e.g. an engine run on another GPU)


class Manifest(BaseModel):
    tltpipe: str
    name: str
    network: str
    toolkit: str
    config: str = "config.yaml"
    pretrained: dict[str, Any] | None = None  # an NGC model.pretrained: {ngc, model, version, file, folder, files}
    created: str = Field(default_factory=now)
    updated: str = Field(default_factory=now)
    stages: dict[str, StageRecord] = {}

    def record(self, stage: str) -> StageRecord:
        return self.stages.setdefault(stage, StageRecord())

    def metric(self, stage: str, key: str) -> Any:
        """A metric of a stage that succeeded; None when it did not (or has no such metric)."""
        record = self.stages.get(stage)
        return record.metrics.get(key) if record is not None and record.status == "succeeded" else None


def load_manifest(run_dir: Path) -> Manifest | None:
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a valid tltpipe manifest ({first}); move it away, or re-run with --force "
                          "to rebuild it") from None


def save_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half of one."""
    manifest.updated = now()
    write_atomic(run_dir / MANIFEST, manifest.model_dump_json(indent=2) + "\n")


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write a file whole or not at all (text as UTF-8, or bytes as they are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8")) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def manifest_json(manifest: Manifest) -> dict[str, Any]:
    return json.loads(manifest.model_dump_json())
