"""Execution of a run, and recovery of the stages a dead tltpipe left behind (planning: planner.py).

    Config --Planner--> [Step] --for each step--> render specs -> Task -> Runner -> collect -> Manifest
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tlt_pipe import __version__
from tlt_pipe.config import Config, dump_resolved, parse_config
from tlt_pipe.diagnosis import diagnose, log_tail
from tlt_pipe.errors import ConfigError, Interrupted, StageFailed, TltPipeError
from tlt_pipe.fingerprint import digest_of, path_fingerprint
from tlt_pipe.manifest import Manifest, StageRecord, load_manifest, now, save_manifest, write_atomic
from tlt_pipe.planner import Planner, Selection, Step, build_context, workspace_for
from tlt_pipe.runlock import RunLock
from tlt_pipe.runners.base import Runner
from tlt_pipe.secrets import redact, scrub_files
from tlt_pipe.stages import Context, Stage, StagePlan
from tlt_pipe.task import Task
from tlt_pipe.toolkits import get_toolkit


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
        self.planner = Planner(config, self.run_dir, key)
        self.stages = self.planner.stages

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed or written: the model key."""
        return self.planner.secrets

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

    def plan(self, selection: Selection, manifest: Manifest | None) -> list[Step]:
        return self.planner.plan(selection, manifest)

    def dry_run(self, selection: Selection) -> list[Step]:
        manifest = load_manifest(self.run_dir) if not selection.force else None
        return self.plan(selection, manifest)

    # running ------------------------------------------------------------------
    def run(self, selection: Selection) -> Manifest:
        self._check_inputs()
        with RunLock(self.run_dir):
            manifest = self._open_manifest(selection)
            self._recover(manifest, selection)
            self.planner.check_upstream(selection, manifest)
            steps = self.plan(selection, manifest)  # renders and checks every spec before any container starts
            self.events.plan(self.run_dir, steps)
            self._ensure_images(steps)
            write_atomic(self.run_dir / "config.yaml", dump_resolved(self.config))
            for name in [s.name for s in steps]:  # planned again only where an earlier stage has run since
                step = self.planner.step(self.planner.stage(name), manifest, selection, None)
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
            self.planner.forget()

    def _execute_step(self, step: Step, manifest: Manifest, selection: Selection) -> None:
        stage = self.planner.stage(step.name)
        ctx = step.context or build_context(self.config, self.run_dir, manifest, self.key, selection, stage)
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

    # jobs left behind by a tltpipe process that died ------------------------------
    def _recover(self, manifest: Manifest, selection: Selection) -> None:
        """Stages a dead tltpipe left 'running': adopt their jobs (a container, a host process: wait, then
        record the result), or stop them with --force; with no job left, the stage was interrupted."""
        unfinished = [n for n, r in manifest.stages.items() if r.status == "running"]
        if not unfinished:
            return
        jobs = {c.labels.get("tltpipe.stage"): c
                      for c in self.runner.find_jobs({"tltpipe.run": str(self.run_dir)})}
        for name in unfinished:
            record, info = manifest.stages[name], jobs.get(name)
            if info is None:
                record.status, record.error = "interrupted", "tltpipe stopped while this stage ran"
                save_manifest(self.run_dir, manifest)
                continue
            if selection.force:
                self.events.line(name, f"stopping job {info.name} left by an earlier tltpipe (--force)")
                self.runner.remove_job(info.id)
                record.status, record.error = "interrupted", "its job was stopped with --force"
                save_manifest(self.run_dir, manifest)
                continue
            self._adopt(name, info, manifest)

    def _adopt(self, name: str, info, manifest: Manifest) -> None:
        stage = self.planner.stage(name)
        record = manifest.stages[name]
        self.events.line(name, f"job {info.name} of an earlier tltpipe process is {info.status}; waiting "
                               "for it to finish, then recording it (--force stops it instead)")
        secrets = list(self.secrets)
        started = time.monotonic()
        end = self.runner.wait_job(info.id, secrets)
        record.exit_code, text, record.oom_killed = end.exit_code, end.text, end.oom_killed
        record.job = dict(end.job) if end.job else None
        log_path = self.run_dir / (record.log or f"logs/{name}.log")
        write_atomic(log_path, text)  # the container's whole output replaces the log the dead process left
        self.runner.remove_job(info.id)
        # What the job ran was planned from the config of the run that started it, not today's.
        ctx = build_context(self._recorded_config(), self.run_dir, manifest, self.key, stage=stage)
        record.reason = "adopted from an earlier tltpipe process"
        self.planner.forget()
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
        ws = workspace_for(self.config, self.run_dir)
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
        record.job = dict(result.job) if result.job else None
        record.oom_killed = result.oom_killed
