"""The run record: runs/<name>/manifest.json, written atomically (temp file, fsync, rename).

One StageRecord per stage: status, times, image and image id, argv with secrets redacted, specs
with hashes, input fingerprints, outputs with size and hash, metrics, artifacts, exit code, log.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from tlt_pipe.errors import ConfigError
from tlt_pipe.regular_file import read_text

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

    @field_validator("metrics")
    @classmethod
    def _numbers(cls, metrics: dict[str, Any]) -> dict[str, Any]:
        """The metrics show, report, compare and the planner compute with are numbers (AP: class -> number)."""
        for key in NUMERIC_METRICS & set(metrics):
            if not _is_number(metrics[key]):
                raise ValueError(f"{key}: expected a number, got {json.dumps(metrics[key])[:40]}")
        ap = metrics.get("ap")
        if ap is not None and not (isinstance(ap, dict) and all(_is_number(v) for v in ap.values())):
            raise ValueError(f"ap: expected class -> number, got {json.dumps(ap)[:60]}")
        return metrics

    @field_validator("artifacts")
    @classmethod
    def _paths(cls, artifacts: dict[str, Any]) -> dict[str, Any]:
        for key in PATH_ARTIFACTS & set(artifacts):
            if not isinstance(artifacts[key], str):
                raise ValueError(f"{key}: expected a path, got {json.dumps(artifacts[key])[:40]}")
        return artifacts


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


NUMERIC_METRICS = frozenset({"mAP", "model_mAP", "mAP_drop", "pruning_ratio", "loss", "validation_loss", "images",
                             "detections", "shards", "engine_bytes", "epoch", "best_epoch", "train_images",
                             "val_images"})


PATH_ARTIFACTS = frozenset({"model", "root", "results", "engine", "images", "labels", "script", "infer_config",
                            "app_config", "prefix"})


def is_run_relative(path: Any) -> bool:
    """A path a manifest records as run-relative: not absolute, never above the run directory (an edited
    or hostile manifest must not point tltpipe at / or at ../another-run)."""
    return isinstance(path, str) and bool(path) and not PurePosixPath(path).is_absolute() \
        and ".." not in PurePosixPath(path).parts


def _is_number(value: Any) -> bool:
    """A JSON number or null (NaN and infinity included: JSON-safe output turns them into null)."""
    return value is None or isinstance(value, (int, float)) and not isinstance(value, bool)


def training_logs(run_dir: Path, stage: str, record: StageRecord | None) -> list[Path]:
    """Where a training stage's CSV log may be in run_dir, most likely first: the name it recorded, in
    <run>/<stage>/ (so a run directory moved or copied reads its own, not the place it was written in),
    then any other training log there."""
    folder = run_dir / stage
    recorded = [str(out.get("path", "")) for out in (record.outputs if record else [])]
    named = [folder / Path(path).name for path in recorded if path.endswith(".csv")]
    return list(dict.fromkeys([*named, *sorted(folder.glob("*_training_log_*.csv"))]))


MAX_MANIFEST_BYTES = 256 << 20  # a manifest of thousands of stages is a few MB


def load_manifest(run_dir: Path) -> Manifest | None:
    path = run_dir / MANIFEST
    if not path.exists():
        if path.is_symlink():  # a link to a disk that is not there: not a fresh run
            raise ConfigError(f"{path}: a link to {os.readlink(path)}, which cannot be read; mount it, or move the "
                              "link away to start afresh")
        return None
    try:
        return Manifest.model_validate_json(read_text(path, limit=MAX_MANIFEST_BYTES))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        first = f"{where}: {str(error['msg']).removeprefix('Value error, ')}"[:200]
        raise ConfigError(f"{path}: not a valid tltpipe manifest ({first}); move it away, or re-run with --force "
                          "to rebuild it") from None
    except (ValueError, OSError) as exc:
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
