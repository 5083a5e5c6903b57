"""Planning (what runs, what is skipped and why) and execution of a run.

    Config --plan--> [Step] --for each step--> render specs -> Task -> Runner -> collect -> Manifest

Planning is pure given the manifest and the files on disk; execution is the imperative shell.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from tlt_pipe import __version__, registry
from tlt_pipe.config import Config, dump_resolved, parse_config
from tlt_pipe.diagnosis import diagnose, log_tail
from tlt_pipe.errors import ConfigError, Interrupted, StageFailed, TltPipeError
from tlt_pipe.fingerprint import digest_of, path_fingerprint, short
from tlt_pipe.manifest import Manifest, StageRecord, load_manifest, now, save_manifest, write_atomic
from tlt_pipe.networks import get_network
from tlt_pipe.runlock import RunLock
from tlt_pipe.runners.base import Runner
from tlt_pipe.secrets import redact, redact_argv, scrub_files
from tlt_pipe.stages import Context, Stage, StagePlan, is_pending
from tlt_pipe.stages import anchors, calibration, engine, evaluate, export, inference, prepare, prune, tfrecords, train
from tlt_pipe.task import Task
from tlt_pipe.toolkits import get_toolkit
from tlt_pipe.workspace import Workspace

# Every stage of every network, in run order; a network runs the common chain plus its extras.
ALL_STAGES: tuple[Stage, ...] = (
    prepare.STAGE, tfrecords.STAGE, tfrecords.VALIDATION, anchors.STAGE, train.TRAIN, evaluate.EVALUATE,
    prune.STAGE, train.RETRAIN, evaluate.EVALUATE_RETRAIN, calibration.STAGE, export.STAGE, engine.STAGE,
    inference.STAGE,
)
# What the CLI accepts (registry.STAGE_NAMES, in this order); stages_for says what a run has.
STAGE_NAMES = registry.STAGE_NAMES
if tuple(s.name for s in ALL_STAGES) != STAGE_NAMES:  # pragma: no cover - a stage added in one place only
    raise RuntimeError("pipeline.ALL_STAGES and registry.STAGE_NAMES disagree")
# Extra stage -> the stages that read what it writes.
_EXTRA_NEEDED_BY = {"tfrecords_val": ("train",), "anchors": ("train",), "calibration_tensorfile": ("export",)}


def stages_for(config: Config) -> tuple[Stage, ...]:
    """The stages a config runs, in order: the common chain plus its network's extras
    (ConfigError when the toolkit does not ship the network)."""
    toolkit = get_toolkit(config.toolkit)
    network = get_network(config.network, toolkit.version)
    extras = {"tfrecords_val": tfrecords.validation_records(network, toolkit.version), "anchors": anchors.applies(network),
              "calibration_tensorfile": calibration.applies(network, toolkit, config)}
    chosen = [anchors.stage_for(config) if s.name == "anchors" else s for s in ALL_STAGES if extras.get(s.name, True)]
    added = [name for name, wanted in extras.items() if wanted]
    return tuple(replace(s, needs=s.needs + tuple(n for n in added if s.name in _EXTRA_NEEDED_BY[n]))
                 for s in chosen)


class Terminated(BaseException):
    """Raised in the main thread when tltpipe receives SIGTERM."""


class Events(Protocol):
    """What a run tells its user interface. Every method must be cheap and must not raise."""

    def plan(self, run_dir: Path, steps: list["Step"]) -> None: ...
    def stage_skipped(self, step: "Step") -> None: ...
    def stage_started(self, step: "Step", log_path: Path) -> None: ...
    def line(self, stage: str, text: str) -> None: ...
    def progress(self, stage: str, text: str) -> None: ...  # an in-place redraw (Keras bar); never logged
    def stage_finished(self, stage: str, record: StageRecord) -> None: ...


@dataclass(frozen=True)
class Step:
    """One stage as planned: run it or skip it, and why."""

    name: str
    action: Literal["run", "skip"]
    reason: str
    plan: StagePlan
    parts: Mapping[str, Any] = field(default_factory=dict)  # fingerprint parts
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def argv(self) -> list[str]:
        return redact_argv(self.plan.argv, self.secrets)

    def as_json(self) -> dict[str, Any]:
        return {"stage": self.name, "action": self.action, "reason": self.reason,
                "image": self.plan.image, "argv": self.argv}


@dataclass(frozen=True)
class Selection:
    from_stage: str | None = None
    to_stage: str | None = None
    force: bool = False
    resume: bool = False
    resume_epoch: int | None = None

    def names(self, stages: tuple[Stage, ...]) -> list[str]:
        available = [s.name for s in stages]
        for value in (self.from_stage, self.to_stage):
            if value is not None and value not in STAGE_NAMES:
                raise ConfigError(f"unknown stage {value!r}; stages: {', '.join(STAGE_NAMES)}")
            if value is not None and value not in available:
                raise ConfigError(f"stage {value!r} does not exist for this network and toolkit; "
                                  f"its stages: {', '.join(available)}")
        start = available.index(self.from_stage) if self.from_stage else 0
        end = available.index(self.to_stage) if self.to_stage else len(available) - 1
        if start > end:
            raise ConfigError(f"--from {self.from_stage} comes after --to {self.to_stage}")
        return available[start:end + 1]


# --- planning (pure given the manifest and the disk) -------------------------------------------

def build_context(config: Config, run_dir: Path, manifest: Manifest | None, key: str | None,
                  selection: Selection = Selection()) -> Context:
    toolkit = get_toolkit(config.toolkit)
    inputs = []
    if config.model.pretrained:
        inputs.append(("pretrained", config.model.pretrained))
    if config.inference.images:
        inputs.append(("images", config.inference.images))
    done = {n: r for n, r in (manifest.stages.items() if manifest else []) if r.status == "succeeded"}
    ctx = Context(
        config=config, toolkit=toolkit, network=get_network(config.network, toolkit.version),
        workspace=Workspace(run_dir=run_dir, inputs=tuple(inputs), native=config.runner.kind == "local"), key=key,
        artifacts={}, metrics={n: r.metrics for n, r in done.items()},
        statuses={n: r.status for n, r in (manifest.stages.items() if manifest else [])},
        resume=selection.resume or selection.resume_epoch is not None, resume_epoch=selection.resume_epoch,
    )
    # What each stage promises (paths fixed by the network and toolkit), overlaid by what it recorded.
    promised = {s.name: dict(s.promises(ctx)) for s in stages_for(config) if s.promises is not None}
    artifacts = {n: {**promised.get(n, {}), **done[n].artifacts} if n in done else promised[n]
                 for n in {*promised, *done}}
    return replace(ctx, artifacts=artifacts)




def fingerprint_parts(stage: Stage, plan: StagePlan, ctx: Context, manifest: Manifest | None,
                      trees: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything whose change means the stage must run again (trees: folders walked already)."""
    old = manifest.stages.get(stage.name) if manifest else None
    cache = {v["path"]: v for v in (old.inputs.values() if old else []) if isinstance(v, dict) and "path" in v}
    parts: dict[str, Any] = {
        "image": plan.image or "host",
        "argv": " ".join(redact_argv(plan.fresh_argv or plan.argv, [ctx.key] if ctx.key else [])),
        "params": digest_of(plan.params),
    }
    if plan.epochs is not None:
        parts["epochs"] = plan.epochs
    specs = plan.fingerprint_specs if plan.fingerprint_specs is not None else plan.specs
    for path, text in specs.items():
        parts[f"spec:{path}"] = digest_of({"text": text})
    for path in plan.inputs:
        parts[f"input:{path}"] = path_fingerprint(Path(path), cache, trees)
    for rel in plan.run_inputs:
        parts[f"run:{rel}"] = "pending" if is_pending(rel) else path_fingerprint(ctx.workspace.host(rel), cache, trees)
    for need in stage.needs:
        record = manifest.stages.get(need) if manifest else None
        parts[f"upstream:{need}"] = record.fingerprint if record else None
    return parts


def _changed(parts: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(parts) | set(old))
    return [k for k in keys if short(parts.get(k)) != short(old.get(k))]


def _outputs_changed(record: StageRecord, trees: dict[str, str] | None = None) -> str | None:
    for out in record.outputs:
        now_fp = path_fingerprint(Path(out["path"]), {out["path"]: out}, trees)
        if now_fp["kind"] == "missing":
            return f"output {out['path']} is missing"
        if short(now_fp) != short(out):
            return f"output {out['path']} changed since it was written"
    return None


def _extended_epochs(parts: Mapping[str, Any], record: StageRecord | None) -> tuple[int, int] | None:
    """(old, new) epoch counts when a finished training run differs only by a higher epoch count."""
    if record is None or record.status != "succeeded" or "epochs" not in record.inputs:
        return None
    old, new = record.inputs["epochs"], parts.get("epochs")
    if _changed(parts, record.inputs) == ["epochs"] and isinstance(new, int) and new > old:
        return old, new
    return None


def decide(stage: Stage, parts: Mapping[str, Any], record: StageRecord | None, *, force: bool, trees=None,
           upstream_will_run: str | None) -> tuple[Literal["run", "skip"], str]:
    if force:
        return "run", "forced (--force)"
    if upstream_will_run:
        return "run", f"after {upstream_will_run} runs"
    if record is None:
        return "run", "has not run yet"
    if record.status == "pending":
        return "run", record.reason or "has not run yet"
    if record.status != "succeeded":
        return "run", f"last attempt {record.status}"
    changed = _changed(parts, record.inputs)
    if changed:
        return "run", "changed: " + ", ".join(k.replace(":", " ", 1) for k in changed[:4])
    missing = _outputs_changed(record, trees)
    if missing:
        return "run", missing
    return "skip", f"up to date (inputs and outputs unchanged since {record.ended})"


# --- execution ----------------------------------------------------------------------------------

class Pipeline:
    def __init__(self, config: Config, run_dir: Path, *, key: str | None, events: Events,
                 runner_factory: Callable[[], Runner] | None = None, config_source: str = "config"):
        self.config = config
        self.run_dir = run_dir.resolve()
        self.key = key
        self.events = events
        self._runner_factory = runner_factory
        self._runner: Runner | None = None
        self.source = config_source
        self.stages = stages_for(config)
        # Folder fingerprints walked in this command, forgotten whenever a stage may have written: an
        # unchanged 300,000-image dataset is walked once, not once per planning pass.
        self._trees: dict[str, str] = {}

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed or written: the model key."""
        return (self.key,) if self.key else ()

    # planning -----------------------------------------------------------------
    def plan(self, selection: Selection, manifest: Manifest | None) -> list[Step]:
        """The steps of the selection; stages already planned to run make their dependents run too."""
        names = selection.names(self.stages)
        steps: list[Step] = []
        will_run: set[str] = set()
        for stage in self.stages:
            if stage.name not in names:
                continue
            upstream = next((n for n in stage.needs if n in will_run), None)
            step = self._step(stage, manifest, selection, upstream)
            if step.action == "run":
                will_run.add(stage.name)
            steps.append(step)
        return steps

    def _step(self, stage: Stage, manifest: Manifest | None, selection: Selection,
              upstream_will_run: str | None) -> Step:
        """Plan one stage against the manifest as it is now (the stages before it may have just run)."""
        ctx = build_context(self.config, self.run_dir, manifest, self.key, selection)
        plan = stage.plan(ctx)
        parts = fingerprint_parts(stage, plan, ctx, manifest, self._trees)
        record = manifest.stages.get(stage.name) if manifest else None
        action, reason = decide(stage, parts, record, force=selection.force, trees=self._trees,
                                upstream_will_run=upstream_will_run)
        extended = _extended_epochs(parts, record) if action == "run" else None
        if extended is not None:
            longer = stage.plan(replace(ctx, extend=True))
            if longer.resumed_from is not None:
                plan = longer
                reason = (f"epochs raised from {extended[0]} to {extended[1]}: continuing from epoch "
                          f"{plan.resumed_from['epoch']}")
                return Step(stage.name, "run", reason, plan, fingerprint_parts(stage, plan, ctx, manifest, self._trees),
                            self.secrets)
        if plan.resumed_from is not None and (action == "run" or selection.resume_epoch is not None):
            action, reason = "run", f"resuming from epoch {plan.resumed_from['epoch']} ({plan.resumed_from['reason']})"
        return Step(stage.name, action, reason, plan, parts, self.secrets)

    def _check_upstream(self, selection: Selection, manifest: Manifest | None) -> None:
        names = selection.names(self.stages)
        for stage in self.stages:
            if stage.name not in names:
                continue
            for need in stage.needs:
                if need in names:
                    continue
                record = manifest.stages.get(need) if manifest else None
                if record is None or record.status != "succeeded":
                    state = record.status if record else "never ran"
                    raise ConfigError(f"stage {stage.name} needs {need}, which has not succeeded in {self.run_dir} "
                                      f"({state}); run it first (tltpipe stage {need} ...)")

    def _check_inputs(self) -> None:
        cfg = self.config
        checks = [("dataset.path", cfg.dataset.path), ("dataset.names", cfg.dataset.names),
                  ("model.pretrained", cfg.model.pretrained), ("inference.images", cfg.inference.images)]
        for field_name, path in checks:
            if path is not None and not Path(path).exists():
                raise ConfigError(f"{self.source}: {field_name}: {path} does not exist")
        toolkit = get_toolkit(cfg.toolkit)
        if toolkit.key_required and not self.key:
            raise ConfigError(f"TLTPIPE_KEY is not set: toolkit {toolkit.version} encrypts models with a key; "
                              "export TLTPIPE_KEY=<key> (the key of your pretrained model, or a new one)")

    def dry_run(self, selection: Selection) -> list[Step]:
        manifest = load_manifest(self.run_dir) if not selection.force else None
        return self.plan(selection, manifest)

    # running ------------------------------------------------------------------
    def run(self, selection: Selection) -> Manifest:
        self._check_inputs()
        with RunLock(self.run_dir):
            manifest = self._open_manifest(selection)
            self._recover(manifest, selection)
            self._check_upstream(selection, manifest)
            steps = self.plan(selection, manifest)  # renders and checks every spec before any container starts
            self.events.plan(self.run_dir, steps)
            self._ensure_images(steps)
            write_atomic(self.run_dir / "config.yaml", dump_resolved(self.config))
            for name in [s.name for s in steps]:  # re-planned one by one: earlier stages' artifacts are now known
                step = self._step(next(s for s in self.stages if s.name == name), manifest, selection, None)
                if step.action == "skip":
                    self.events.stage_skipped(step)
                    continue
                self._execute(step, manifest, selection)
            return manifest

    def _ensure_images(self, steps: list[Step]) -> None:
        """Every image the run will use, present (or pulled) before the first stage starts: a missing
        deploy image or an unreachable Docker engine is reported now, not after hours of training."""
        for image in dict.fromkeys(s.plan.image for s in steps if s.action == "run" and s.plan.image):
            self.runner.ensure_image(image, on_line=lambda text: self.events.line("images", text))

    def _open_manifest(self, selection: Selection) -> Manifest:
        try:
            manifest = load_manifest(self.run_dir)
        except ConfigError:
            if not selection.force:
                raise
            damaged = self.run_dir / f"manifest.json.damaged-{int(time.time())}"
            (self.run_dir / "manifest.json").replace(damaged)  # kept, never deleted
            self.events.line("manifest", f"the damaged manifest was moved to {damaged}; starting a new one")
            manifest = None
        if manifest is None:
            manifest = Manifest(tltpipe=__version__, name=self.config.name, network=self.config.network,
                                toolkit=self.config.toolkit)
            save_manifest(self.run_dir, manifest)
        return manifest

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            if self._runner_factory is None:
                raise ConfigError("no runner configured")
            self._runner = self._runner_factory()
        return self._runner

    def _execute(self, step: Step, manifest: Manifest, selection: Selection) -> None:
        try:
            self._execute_step(step, manifest, selection)
        finally:
            self._trees.clear()

    def _execute_step(self, step: Step, manifest: Manifest, selection: Selection) -> None:
        stage = next(s for s in self.stages if s.name == step.name)
        ctx = build_context(self.config, self.run_dir, manifest, self.key, selection)
        plan = step.plan
        log_path = self.run_dir / "logs" / f"{step.name}.log"
        record = StageRecord(status="running", reason=step.reason, started=now(), image=plan.image,
                             argv=step.argv, inputs=dict(step.parts),
                             log=str(log_path.relative_to(self.run_dir)),
                             fingerprint=digest_of(step.parts),
                             resumed_from=dict(plan.resumed_from) if plan.resumed_from else None)
        manifest.stages[step.name] = record
        self._invalidate_dependents(step.name, manifest)
        save_manifest(self.run_dir, manifest)
        self.events.stage_started(step, log_path)
        started = time.monotonic()
        secrets = list(self.secrets)
        try:
            self._prepare_files(plan, record, log_path)
            if stage.before_run is not None:
                stage.before_run(ctx, plan)
            if stage.run_on_host is not None:
                self._run_host(stage, ctx, plan, log_path, secrets)
                record.exit_code = 0
            else:
                self._run_container(step, plan, record, log_path)
            self._conclude(stage, ctx, plan, record, log_path, secrets)
        except (KeyboardInterrupt, Terminated) as exc:
            code = 143 if isinstance(exc, Terminated) else 130
            self._finish(record, "interrupted", started, manifest, step.name, error="interrupted")
            hint = "--resume continues it" if stage.before_run else "run the same command to continue"
            raise Interrupted(f"interrupted during {step.name}; {hint}", code) from None
        except TltPipeError as exc:
            self._finish(record, "failed", started, manifest, step.name, error=str(exc))
            raise
        except BaseException as exc:
            self._finish(record, "failed", started, manifest, step.name, error=redact(repr(exc), secrets))
            raise
        self._finish(record, "succeeded", started, manifest, step.name)

    def _conclude(self, stage: Stage, ctx: Context, plan: StagePlan, record: StageRecord, log_path: Path,
                  secrets: list[str]) -> None:
        """Judge a finished task from its exit code, log and files: metrics and outputs, or StageFailed."""
        log_text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        if record.exit_code != 0:
            why = diagnose(record.exit_code, log_text, oom_killed=record.oom_killed)
            raise StageFailed(f"stage {stage.name} failed with exit code {record.exit_code}"
                              + (f": {why}" if why else "") + f"; full log: {log_path}",
                              log_tail=log_tail(log_text))
        try:
            outcome = stage.collect(ctx, plan, log_text)
        except (ValueError, OSError) as exc:
            raise StageFailed(f"stage {stage.name}: {redact(str(exc), secrets)}") from None
        for path in scrub_files([ctx.workspace.host(o) for o in plan.outputs] + [log_path], secrets):
            self.events.line(stage.name, f"removed the model key from {path} (it is never left on disk; "
                                         "give it to DeepStream yourself)")
        missing = [o for o in plan.outputs if not ctx.workspace.host(o).exists()]
        if missing:
            raise StageFailed(f"stage {stage.name} exited 0 but did not write {', '.join(missing)}")
        record.metrics = dict(outcome.metrics)
        record.artifacts = dict(outcome.artifacts)
        record.outputs = [path_fingerprint(ctx.workspace.host(o)) for o in plan.outputs]

    # containers left behind by a tltpipe process that died ------------------------
    def _recover(self, manifest: Manifest, selection: Selection) -> None:
        """Stages a dead tltpipe left 'running': adopt their containers (wait, then record the result),
        or stop them with --force; with no container left, the stage was interrupted."""
        unfinished = [n for n, r in manifest.stages.items() if r.status == "running"]
        if not unfinished:
            return
        containers = {c.labels.get("tltpipe.stage"): c
                      for c in self.runner.find_containers({"tltpipe.run": str(self.run_dir)})}
        for name in unfinished:
            record, info = manifest.stages[name], containers.get(name)
            if info is None:
                record.status, record.error = "interrupted", "tltpipe stopped while this stage ran"
                save_manifest(self.run_dir, manifest)
                continue
            if selection.force:
                self.events.line(name, f"stopping container {info.name} left by an earlier tltpipe (--force)")
                self.runner.remove_container(info.id)
                record.status, record.error = "interrupted", "its container was stopped with --force"
                save_manifest(self.run_dir, manifest)
                continue
            self._adopt(name, info, manifest)

    def _adopt(self, name: str, info, manifest: Manifest) -> None:
        stage = next(s for s in self.stages if s.name == name)
        record = manifest.stages[name]
        self.events.line(name, f"container {info.name} of an earlier tltpipe process is {info.status}; waiting "
                               "for it to finish, then recording it (--force stops it instead)")
        secrets = list(self.secrets)
        started = time.monotonic()
        record.exit_code, text, record.oom_killed = self.runner.wait_container(info.id, secrets)
        log_path = self.run_dir / (record.log or f"logs/{name}.log")
        write_atomic(log_path, text)  # the container's whole output replaces the log the dead process left
        self.runner.remove_container(info.id)
        # What the job ran was planned from the config of the run that started it, not today's.
        ctx = build_context(self._recorded_config(), self.run_dir, manifest, self.key)
        record.reason = "adopted from an earlier tltpipe process"
        self._trees.clear()
        try:
            self._conclude(stage, ctx, stage.plan(ctx), record, log_path, secrets)
        except TltPipeError as exc:
            self._finish(record, "failed", started, manifest, name, error=str(exc))
            return
        self._finish(record, "succeeded", started, manifest, name)

    def _recorded_config(self) -> Config:
        """The resolved config the run directory's last run recorded (config.yaml), else this one."""
        path = self.run_dir / "config.yaml"
        try:
            return parse_config(path.read_text(encoding="utf-8"), source=str(path), base_dir=self.run_dir)
        except (OSError, ConfigError):
            return self.config

    def _finish(self, record: StageRecord, status: str, started: float, manifest: Manifest, name: str,
                error: str | None = None) -> None:
        record.status = status  # type: ignore[assignment]
        record.ended = now()
        record.duration_s = round(time.monotonic() - started, 3)
        record.error = error
        save_manifest(self.run_dir, manifest)
        self.events.stage_finished(name, record)

    def _invalidate_dependents(self, name: str, manifest: Manifest) -> None:
        stale = {name}
        for stage in self.stages:
            if any(n in stale for n in stage.needs):
                stale.add(stage.name)
                old = manifest.stages.get(stage.name)
                if old is not None and old.status == "succeeded":
                    old.status = "pending"
                    old.reason = f"{name} ran again"

    def _prepare_files(self, plan: StagePlan, record: StageRecord, log_path: Path) -> None:
        for rel in plan.clean:
            target = self.run_dir / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            target.mkdir(parents=True, exist_ok=True)
        for rel in plan.outputs:
            (self.run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        for rel, text in plan.specs.items():
            write_atomic(self.run_dir / rel, text)
        record.specs = [{"path": rel, "sha256": path_fingerprint(self.run_dir / rel)["sha256"]} for rel in plan.specs]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("", encoding="utf-8")

    def _run_host(self, stage: Stage, ctx: Context, plan: StagePlan, log_path: Path, secrets: list[str]) -> None:
        with open(log_path, "a", encoding="utf-8") as log:
            def emit(text: str) -> None:
                text = redact(text, secrets)
                log.write(text + "\n")
                log.flush()
                self.events.line(stage.name, text)

            stage.run_on_host(ctx, plan, emit)

    def _run_container(self, step: Step, plan: StagePlan, record: StageRecord, log_path: Path) -> None:
        ws = build_context(self.config, self.run_dir, None, self.key).workspace
        env = tuple(sorted(self.config.runner.env.items())) + plan.env
        task = Task(image=plan.image or "", argv=plan.argv, mounts=ws.mounts(), env=env,
                    workdir=str(self.run_dir) if ws.native else None,
                    secrets=self.secrets)
        runner = self.runner
        labels = {"tltpipe.run": str(self.run_dir), "tltpipe.stage": step.name, "tltpipe.name": self.config.name}
        result = runner.run(task, log_path=log_path, labels=labels,
                            on_line=lambda text: self.events.line(step.name, text),
                            on_progress=lambda text: self.events.progress(step.name, text))
        record.image_id = result.image_id
        record.exit_code = result.exit_code
        record.oom_killed = result.oom_killed
