"""Experiment tracking from the host side: MLflow or ClearML, when the library is installed.

    tracking: {mlflow: {tracking_uri: http://mlflow:5000, experiment: lpd}}   # pip install 'tltpipe[mlflow]'
    tracking: {clearml: {project: plates}}                                   # pip install 'tltpipe[clearml]'

One tltpipe command is one tracked run. ``TrackingEvents`` wraps the run's events object, hands every
event on unchanged and on the way:

- at ``plan``: the resolved config, flattened (``train.epochs``), as params;
- when a stage finishes (or is skipped as up to date): its scalar metrics as ``<stage>/<name>``
  (``evaluate/mAP``, ``prune/pruning_ratio``, ``evaluate/AP/lpd``); after train and retrain the
  per-epoch series of the training CSV with step = epoch (``train/loss``, ``train/lr``, ``train/mAP``,
  ``train/validation_loss``, ``train/AP/<class>``); the metrics those series already hold
  are logged once as ``train/best_mAP`` and ``train/last_loss``;
- when the command ends (``__exit__``): the exported model, labels.txt, nvinfer_config.txt, the
  engine and manifest.json as artifacts, then the run's status (FINISHED, FAILED or KILLED).

The library is imported when the tracker is made, before any stage runs: a missing library is a
ConfigError. Starting the tracked run is the first thing the command does; if that fails the
command stops there. Once stages run, a tracking failure never stops a run: it is reported as one
line and tracking stops for that backend. Params come from the resolved config, which holds no
model key; every value is redacted against the key all the same, the tracking section (its URI may
carry credentials) is left out and runner.env values are masked.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from tlt_pipe.config import Config
from tlt_pipe.errors import ConfigError, Interrupted
from tlt_pipe.manifest import MANIFEST, StageRecord, load_manifest, training_logs
from tlt_pipe.parsers import EpochRow, parse_training_csv
from tlt_pipe.secrets import redact

Status = Literal["FINISHED", "FAILED", "KILLED"]
TRAINING_STAGES = ("train", "retrain")
# (stage, artifact name) logged at the end, under the stage's folder.
FINAL_ARTIFACTS = (("export", "model"), ("export", "labels"), ("export", "nvinfer_config"),
                   ("export", "cal_cache"), ("engine", "engine"))
MAX_PARAM_CHARS = 500
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- /]")


class Tracker(Protocol):
    """One tracked run in an experiment tracker. Methods may raise; TrackingEvents contains it."""

    name: str
    where: str  # after start: which run, where (shown to the user)

    def start(self, config: Config, run_dir: Path) -> None: ...
    def log_params(self, params: Mapping[str, str]) -> None: ...
    def log_metrics(self, series: Sequence[tuple[int | None, Mapping[str, float]]]) -> None: ...
    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...
    def finish(self, status: Status, reason: str | None = None) -> None: ...


# --- what is logged (pure) ----------------------------------------------------------------------

def metric_key(*parts: str) -> str:
    """A metric or param name every backend accepts: odd characters (class names) become _."""
    return "/".join(_UNSAFE.sub("_", p) for p in parts if p)


def flatten_params(config: Config, secrets: Iterable[str] = ()) -> dict[str, str]:
    """The resolved config as dotted keys and string values, without the tracking section and
    with runner.env values masked; every value redacted against secrets."""
    data = config.model_dump(mode="json", exclude={"tracking"})
    data["runner"]["env"] = {k: "***" for k in data["runner"].get("env", {})}
    flat: dict[str, str] = {}
    secrets = [s for s in secrets if s]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
            return
        text = "" if value is None else str(value)
        text = redact(text, secrets)
        if len(text) > MAX_PARAM_CHARS:
            text = text[:MAX_PARAM_CHARS - 3] + "..."
        flat[_UNSAFE.sub("_", prefix)] = text

    walk("", data)
    return flat


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def stage_metrics(stage: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """A stage's scalar results as <stage>/<name> (nested dicts such as ap: <stage>/AP/<class>).
    For training stages the names the per-epoch series use are renamed: mAP (the selected
    epoch's) to best_mAP, loss (the last epoch's) to last_loss, ap to best_AP."""
    renamed = {"mAP": "best_mAP", "loss": "last_loss", "ap": "best_AP"} if stage in TRAINING_STAGES else {}
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = renamed.get(key, "AP" if key == "ap" else key)
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                number = _number(inner)
                if number is not None:
                    out[metric_key(stage, name, str(sub))] = number
            continue
        number = _number(value)
        if number is not None:
            out[metric_key(stage, name)] = number
    return out


def epoch_series(stage: str, rows: Iterable[EpochRow]) -> list[tuple[int, dict[str, float]]]:
    """Per-epoch metrics of a training CSV, step = epoch; missing (nan) values are left out."""
    series = []
    for row in rows:
        values = {"loss": row.loss, "lr": row.lr, "mAP": row.map, "validation_loss": row.validation_loss}
        values.update({f"AP/{cls}": ap for cls, ap in row.ap.items()})
        metrics = {metric_key(stage, *name.split("/")): float(v) for name, v in values.items()
                   if _number(v) is not None}
        if metrics:
            series.append((row.epoch, metrics))
    return series


def training_rows(run_dir: Path, stage: str, record: StageRecord) -> list[EpochRow]:
    """The rows of the stage's training CSV in this run directory (manifest.training_logs)."""
    for path in training_logs(run_dir, stage, record):
        if path.is_file():
            try:
                return parse_training_csv(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return []
    return []


def final_artifacts(run_dir: Path) -> list[tuple[Path, str | None]]:
    """(file, folder) to log at the end: the succeeded export's and engine's files, then manifest.json."""
    found: list[tuple[Path, str | None]] = []
    try:
        manifest = load_manifest(run_dir)
    except ConfigError:
        manifest = None
    for stage, name in FINAL_ARTIFACTS:
        record = manifest.stages.get(stage) if manifest else None
        rel = record.artifacts.get(name) if record and record.status == "succeeded" else None
        if isinstance(rel, str) and (run_dir / rel).is_file():
            found.append((run_dir / rel, stage))
    if (run_dir / MANIFEST).is_file():
        found.append((run_dir / MANIFEST, None))
    return found


def status_of(exc: BaseException | None) -> Status:
    if exc is None:
        return "FINISHED"
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return "KILLED"
    return "FAILED"


# --- the events wrapper --------------------------------------------------------------------------

class TrackingEvents:
    """Hands every event to ``inner`` unchanged, and tells the trackers. A context manager: entering
    starts the tracked runs (ConfigError when a backend cannot start one), leaving logs the final
    artifacts and the status from the way the block ended."""

    def __init__(self, inner: Any, trackers: Sequence[Tracker], config: Config, run_dir: Path,
                 secrets: Sequence[str] = ()):
        self.inner = inner
        self.config = config
        self.run_dir = Path(run_dir)
        self.secrets = [s for s in secrets if s]
        self._trackers = list(trackers)
        self._live: list[Tracker] = []

    def __enter__(self) -> "TrackingEvents":
        for tracker in self._trackers:
            try:
                tracker.start(self.config, self.run_dir.resolve())
            except Exception as exc:
                self._finish_all("FAILED", "tltpipe could not start tracking")
                raise ConfigError(f"tracking.{tracker.name}: cannot start a run: {self._one_line(exc)}") from None
            self._live.append(tracker)
            self.inner.line("tracking", f"tracking.{tracker.name}: {tracker.where}")
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        for path, folder in final_artifacts(self.run_dir.resolve()):
            self._each(f"log {path.name}", lambda t, p=path, f=folder: t.log_artifact(p, f))
        reason = self._one_line(exc) if exc is not None else None
        self._finish_all(status_of(exc), reason)
        return False

    # Events protocol ---------------------------------------------------------------------------
    def plan(self, run_dir: Path, steps) -> None:
        self.inner.plan(run_dir, steps)
        self.run_dir = Path(run_dir)
        params = flatten_params(self.config, self.secrets)
        self._each("log the config", lambda t: t.log_params(params))

    def stage_skipped(self, step) -> None:
        self.inner.stage_skipped(step)
        try:
            manifest = load_manifest(self.run_dir)
        except ConfigError:
            return
        record = manifest.stages.get(step.name) if manifest else None
        if record is not None and record.status == "succeeded":
            self._log_stage(step.name, record)

    def stage_started(self, step, log_path: Path) -> None:
        self.inner.stage_started(step, log_path)

    def line(self, stage: str, text: str) -> None:
        self.inner.line(stage, text)

    def progress(self, stage: str, text: str) -> None:
        self.inner.progress(stage, text)

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        self.inner.stage_finished(stage, record)
        if record.status == "succeeded":
            self._log_stage(stage, record)

    # ------------------------------------------------------------------------------------------
    def _log_stage(self, stage: str, record: StageRecord) -> None:
        series: list[tuple[int | None, Mapping[str, float]]] = []
        if stage in TRAINING_STAGES:
            series += epoch_series(stage, training_rows(self.run_dir, stage, record))
        scalars = stage_metrics(stage, record.metrics)
        if scalars:
            series.append((None, scalars))
        if series:
            self._each(f"log the {stage} metrics", lambda t: t.log_metrics(series))

    def _each(self, what: str, call) -> None:
        """Call every live tracker; one that fails is reported once and dropped (the run goes on)."""
        for tracker in list(self._live):
            try:
                call(tracker)
            except Exception as exc:
                self._live.remove(tracker)
                self.inner.line("tracking", f"tracking.{tracker.name}: could not {what} ({self._one_line(exc)}); "
                                            "tracking stops here, the run goes on")
                try:
                    tracker.finish("FAILED", f"tltpipe could not {what}")
                except Exception:
                    pass

    def _finish_all(self, status: Status, reason: str | None) -> None:
        for tracker in self._live:
            try:
                tracker.finish(status, reason)
            except Exception as exc:
                self.inner.line("tracking", f"tracking.{tracker.name}: could not end the run ({self._one_line(exc)})")
        self._live = []

    def _one_line(self, exc: BaseException) -> str:
        return redact(" ".join(str(exc).split()) or type(exc).__name__, self.secrets)


# --- backends ------------------------------------------------------------------------------------

def make_trackers(config: Config) -> list[Tracker]:
    """The configured trackers, their libraries imported now (ConfigError naming the extra if missing)."""
    trackers: list[Tracker] = []
    if config.tracking.mlflow is not None:
        trackers.append(MlflowTracker(config.tracking.mlflow))
    if config.tracking.clearml is not None:
        trackers.append(ClearmlTracker(config.tracking.clearml))
    return trackers


def open_tracking(config: Config, inner: Any, run_dir: Path, secrets: Sequence[str] = ()) -> TrackingEvents | None:
    """TrackingEvents around inner when the config asks for tracking, else None."""
    trackers = make_trackers(config)
    return TrackingEvents(inner, trackers, config, run_dir, secrets) if trackers else None


def _needs(backend: str, package: str) -> ConfigError:
    return ConfigError(f"tracking.{backend} needs {package}: pip install 'tltpipe[{backend}]'")


def _tags(config: Config, run_dir: Path) -> dict[str, str]:
    from tlt_pipe import __version__

    return {"tltpipe.version": __version__, "tltpipe.network": config.network, "tltpipe.toolkit": config.toolkit,
            "tltpipe.name": config.name, "tltpipe.run_dir": str(run_dir)}


def _without_credentials(uri: str) -> str:
    """A URI to show: user:password@ removed."""
    return re.sub(r"//[^/@]*@", "//", uri)


class MlflowTracker:
    """MLflow through its client (no global active run): a file store, a tracking server or Databricks."""

    name = "mlflow"
    _BATCH = 1000  # MLflow's limit of metrics in one log_batch

    def __init__(self, settings):
        try:
            import mlflow  # noqa: F401  (the package first: its submodules may be loaded already)
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _needs("mlflow", "MLflow") from None
        self._client_class, self._metric, self._param = MlflowClient, Metric, Param
        self.settings = settings
        self.client = None
        self.run_id: str | None = None
        self.where = ""

    def start(self, config: Config, run_dir: Path) -> None:
        self.client = self._client_class(self.settings.tracking_uri) if self.settings.tracking_uri \
            else self._client_class()
        name = self.settings.experiment or config.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            try:
                experiment_id = self.client.create_experiment(name)
            except Exception:  # made meanwhile by another process
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        tags = {**_tags(config, run_dir), "mlflow.source.name": "tltpipe", "mlflow.source.type": "LOCAL"}
        run = self.client.create_run(experiment_id, run_name=self.settings.run_name or run_dir.name, tags=tags)
        self.run_id = run.info.run_id
        uri = str(getattr(self.client, "tracking_uri", "") or "MLflow's default store")
        self.where = f"run {self.run_id} in experiment {name} at {_without_credentials(uri)}"

    def log_params(self, params: Mapping[str, str]) -> None:
        items = [self._param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's limit of params in one log_batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, series: Sequence[tuple[int | None, Mapping[str, float]]]) -> None:
        stamp = int(time.time() * 1000)
        items = [self._metric(k, v, stamp, step or 0) for step, metrics in series for k, v in metrics.items()]
        for i in range(0, len(items), self._BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + self._BATCH])

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: Status, reason: str | None = None) -> None:
        if self.run_id is not None:
            if reason:
                self.client.set_tag(self.run_id, "tltpipe.error", reason[:5000])
            self.client.set_terminated(self.run_id, status)
            self.run_id = None


class ClearmlTracker:
    """ClearML: one Task per command, scalars titled by metric with the stage as the series."""

    name = "clearml"

    def __init__(self, settings):
        try:
            from clearml import Task
        except ImportError:
            raise _needs("clearml", "ClearML") from None
        self._task_class = Task
        self.settings = settings
        self.task = None
        self.where = ""

    def start(self, config: Config, run_dir: Path) -> None:
        self.task = self._task_class.init(
            project_name=self.settings.project or "tltpipe", task_name=self.settings.task_name or run_dir.name,
            reuse_last_task_id=False, auto_connect_arg_parser=False, auto_connect_frameworks=False,
            auto_resource_monitoring=False, auto_connect_streams=False)
        self.task.add_tags([config.network, f"tao-{config.toolkit}"])
        self.task.set_user_properties(**{k.replace(".", "_"): v for k, v in _tags(config, run_dir).items()})
        self.where = f"task {self.task.id} in project {self.settings.project or 'tltpipe'}"

    def log_params(self, params: Mapping[str, str]) -> None:
        self.task.connect(dict(params), name="tltpipe")

    def log_metrics(self, series: Sequence[tuple[int | None, Mapping[str, float]]]) -> None:
        logger = self.task.get_logger()
        single = getattr(logger, "report_single_value", None)  # ClearML 1.9 and later
        for step, metrics in series:
            for key, value in metrics.items():
                stage, _, metric = key.partition("/")
                if step is None and single is not None:
                    single(key, value)
                elif step is None:
                    logger.report_scalar(title=metric, series=stage, value=value, iteration=0)
                else:
                    logger.report_scalar(title=metric, series=stage, value=value, iteration=step)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.task.upload_artifact(name=f"{folder}/{path.name}" if folder else path.name, artifact_object=path,
                                  wait_on_upload=True)

    def finish(self, status: Status, reason: str | None = None) -> None:
        if self.task is None:
            return
        task, self.task = self.task, None
        task.flush(wait_for_uploads=True)
        task.close()  # marks a task this process started completed
        if status == "FAILED":
            task.mark_failed(status_reason=reason or "tltpipe run failed", force=True)
        elif status == "KILLED":
            task.mark_stopped(force=True, status_message=reason or "interrupted")
