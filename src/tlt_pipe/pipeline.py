"""Execution of a run, and recovery of the stages a dead tltpipe left behind (planning: planner.py).

    Config --Planner--> [Step] --for each step--> render specs -> Task -> Runner -> collect -> Manifest
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from tlt_pipe import __version__, ngc, provenance
from tlt_pipe.config import Config, dump_resolved, parse_config
from tlt_pipe.diagnosis import diagnose, log_tail
from tlt_pipe.errors import ConfigError, Interrupted, StageFailed, TltPipeError
from tlt_pipe.fingerprint import digest_of, path_fingerprint
from tlt_pipe.manifest import MANIFEST, Manifest, StageRecord, load_manifest, now, save_manifest, write_atomic
from tlt_pipe.networks import get_network
from tlt_pipe.planner import Planner, Selection, Step, build_context, workspace_for
from tlt_pipe.runlock import RunLock
from tlt_pipe.runners.base import Cancelled, Runner
from tlt_pipe.schedule import ready, slots_for
from tlt_pipe.secrets import redact, redact_argv, scrub_files
from tlt_pipe.stages import Context, Stage, StagePlan
from tlt_pipe.task import RunResult, Task
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


# Where a stage's last good outputs wait while it runs again: PREVIOUS/<stage>/<folder>, removed when a run of
# that stage succeeds (a fresh one, or one resumed from the failed run's checkpoints).
PREVIOUS = ".previous"

# Config paths that name one file (a weights file, a class list), never a folder.
_FILE_FIELDS = frozenset({"model.pretrained", "dataset.names", "pytorch_ssd.pretrained"})


def usable_run_dir(run_dir: Path) -> Path:
    """The run directory, resolved; a ConfigError when it cannot be one (a file, below a file, a symlink
    loop, a name too long), so a dry run refuses what the run itself would."""
    try:
        resolved = run_dir.resolve()
        existing = resolved
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"{run_dir}: the run directory is a file (or inside one); choose another run_dir")
        (resolved / MANIFEST).exists()  # a name the system refuses (too long) fails here
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"{run_dir}: cannot use it as the run directory: {getattr(exc, 'strerror', None) or exc}") from None
    return resolved


class Pipeline:
    def __init__(self, config: Config, run_dir: Path, *, key: str | None, events: Events,
                 runner_factory: Callable[[], Runner] | None = None, config_source: str = "config"):
        self.config = config
        self.run_dir = usable_run_dir(run_dir)
        self.key = key
        self.events = _Serialized(events)
        self._runner_factory = runner_factory
        self._runner: Runner | None = None
        self.source = config_source
        self.pretrained: dict | None = None  # the NGC model the run starts from, as the manifest records it
        self._replan(config)
        self._cancel = threading.Event()  # set: every running stage stops, nothing more starts

    def _replan(self, config: Config) -> None:
        """Plan from config: an NGC model.pretrained is its file in the cache, or, before it is downloaded, a
        placeholder in its cache folder (a dry run downloads nothing)."""
        if config.model.ngc:
            ref = ngc.parse_ref(config.model.ngc)
            got = ngc.cached(ref)
            self.pretrained = got.record() if got else None
            path = got.weights if got else ngc.folder_of(ref) / ngc.PLACEHOLDER
            config = config.model_copy(update={"model": config.model.model_copy(update={"pretrained": path})})
        self.config = config
        self.planner = Planner(config, self.run_dir, self.key)
        self.stages = self.planner.stages

    def _fetch_pretrained(self) -> None:
        """The NGC model in the cache before anything runs (downloaded now when it is not there)."""
        if self.config.model.ngc and self.pretrained is None:
            ngc.fetch(ngc.parse_ref(self.config.model.ngc), on_line=lambda text: self.events.line("ngc", text))
            self._replan(self.config)

    def stop(self, *, now: bool = False) -> None:
        """Stop the run from another thread, as Ctrl-C does: its running stages are stopped and recorded
        interrupted, and run() raises Interrupted. now: kill their jobs at once (a second Ctrl-C)."""
        self._cancel.set()
        if now:
            self._kill_jobs()

    def _kill_jobs(self) -> None:
        for info in self.runner.find_jobs({"tltpipe.run": str(self.run_dir)}):
            self.runner.remove_job(info.id)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed or written: the model key."""
        return self.planner.secrets

    def _check_inputs(self, *, key: bool = True) -> None:
        cfg = self.config
        toolkit = get_toolkit(cfg.toolkit)
        framework = get_network(cfg.network, toolkit.version).framework
        checks = [("dataset.path", cfg.dataset.path), ("dataset.names", cfg.dataset.names),
                  ("model.pretrained", cfg.model.pretrained), ("inference.images", cfg.inference.images)]
        if framework == "pytorch_ssd":
            checks += [("pytorch_ssd.repo", cfg.pytorch_ssd.repo), ("pytorch_ssd.pretrained", cfg.pytorch_ssd.pretrained)]
            script = Path(cfg.pytorch_ssd.repo or ".") / "train_ssd.py"
            if Path(cfg.pytorch_ssd.repo or ".").is_dir() and not script.is_file():
                raise ConfigError(f"{self.source}: pytorch_ssd.repo: {script} does not exist; name your pytorch-ssd "
                                  "checkout (jetson-inference's python/training/detection/ssd)")
        for field_name, path in checks:
            if path is not None and not Path(path).exists() and not ngc.is_placeholder(Path(path)):
                raise ConfigError(f"{self.source}: {field_name}: {path} does not exist")
            if field_name in _FILE_FIELDS and path is not None and Path(path).is_dir():
                raise ConfigError(f"{self.source}: {field_name}: {path} is a folder; name the file in it")
        if not cfg.dataset.path.is_dir():
            raise ConfigError(f"{self.source}: dataset.path: {cfg.dataset.path} is not a folder")
        if key and toolkit.key_required and not self.key and framework == "tao":
            raise ConfigError(f"TLTPIPE_KEY is not set: toolkit {toolkit.version} encrypts models with a key; "
                              "export TLTPIPE_KEY=<key> (the key of your pretrained model, or a new one)")

    def plan(self, selection: Selection, manifest: Manifest | None) -> list[Step]:
        return self.planner.plan(selection, manifest)

    def dry_run(self, selection: Selection) -> list[Step]:
        """The plan, with the same checks of the inputs as a run (not the key: a plan never shows it). A stage
        whose upstream has not succeeded is planned all the same (a preview of a part of the chain), and its
        reason says that a run would refuse to start."""
        self._check_inputs(key=False)
        try:
            manifest = load_manifest(self.run_dir)
        except ConfigError:
            if not selection.force:
                raise
            manifest = None  # a run with --force moves it away and starts a new one
        self._owned(manifest)
        steps = self.plan(selection, manifest if not selection.force else None)
        gaps = self.planner.upstream_gaps(selection, manifest)
        return [replace(step, reason=f"{step.reason}; needs {gaps[step.name][0]}, which has not succeeded here "
                                     f"({gaps[step.name][1]}): a run stops before it starts")
                if step.name in gaps else step for step in steps]

    # running ------------------------------------------------------------------
    def run(self, selection: Selection) -> Manifest:
        self._fetch_pretrained()
        self._check_inputs()
        with RunLock(self.run_dir):
            manifest = self._open_manifest(selection)
            if self.pretrained:
                manifest.pretrained = self.pretrained
            self._recover(manifest, selection)
            self.planner.check_upstream(selection, manifest)
            steps = self.plan(selection, manifest)  # renders and checks every spec before any container starts
            self.events.plan(self.run_dir, steps)
            self._ensure_images(steps)
            write_atomic(self.run_dir / "config.yaml", dump_resolved(self.config))
            self._restore_specs([s.name for s in steps if s.action == "run"], manifest)
            self._dispatch([s.name for s in steps], manifest, selection)
            return manifest

    def _restore_specs(self, running: list[str], manifest: Manifest) -> None:
        """Write back an upstream stage's spec a stage about to run reads, when it was deleted or edited since
        (the stage rendered it; rendering it again gives the same bytes)."""
        for rel, (stage, text) in self.planner.lost_specs(running, manifest).items():
            write_atomic(self.run_dir / rel, text)
            self.events.line("specs", f"{rel}: written back as {stage} rendered it (it was missing or edited)")

    def _ensure_images(self, steps: list[Step]) -> None:
        """Every image the run will use, present (or pulled) before the first stage starts: a missing
        deploy image or an unreachable Docker engine is reported now, not after hours of training."""
        for image in dict.fromkeys(s.plan.image for s in steps if s.action == "run" and s.plan.image):
            self.runner.ensure_image(image, on_line=lambda text: self.events.line("images", text))

    def _owned(self, manifest: Manifest | None) -> None:
        """The run directory's manifest, when it records this network on this toolkit: another's records
        and models are not this config's to re-plan, overwrite or delete."""
        if manifest is not None and (manifest.network, manifest.toolkit) != (self.config.network, self.config.toolkit):
            raise ConfigError(f"{self.run_dir}: holds a {manifest.network} run on TAO {manifest.toolkit} (manifest.json); "
                              f"this config is {self.config.network} on TAO {self.config.toolkit}: give it its own "
                              "run_dir")

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
        self._owned(manifest)
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

    # stages side by side -----------------------------------------------------------------
    def _dispatch(self, order: list[str], manifest: Manifest, selection: Selection) -> None:
        """Run the planned stages, each once every stage it depends on has finished, several at a time where
        the graph allows (schedule.py). Each is planned again just before it starts, against the manifest as
        it is then. A failed stage starts nothing more; the stages already running finish first. Ctrl-C or
        SIGTERM stops every running stage (a second one kills them at once)."""
        slots = slots_for(self.config.runner)
        board = _Board(order, {name: self.planner.upstream(name) for name in order}, slots.limit, slots.gpus,
                       list(slots.gpus or ()))
        cancel = self._cancel
        workers = ThreadPoolExecutor(max_workers=slots.limit or len(order) or 1, thread_name_prefix="tltpipe-stage")
        try:
            while True:
                if cancel.is_set():  # stop() from another thread
                    raise Terminated()
                self._start_ready(board, manifest, selection, lambda job: workers.submit(self._work, job, cancel))
                if not board.running:
                    break
                done, _ = wait(board.running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = board.running.pop(future)
                    retry = self._requeued(job, future, manifest)
                    if retry is not None:  # on the GPU it had
                        board.running[workers.submit(self._work, retry, cancel)] = retry
                    else:
                        self._ended(board, job, self._complete(job, future.result, manifest))
        except (KeyboardInterrupt, Terminated) as exc:
            cancel.set()
            self._drain(board.running, manifest)
            stopped = [n for n in order if n in board.started and manifest.stages[n].status == "interrupted"]
            hint = ("--resume continues it" if any(self.planner.stage(n).before_run for n in stopped)
                    else "run the same command to continue")
            raise Interrupted(f"interrupted during {', '.join(stopped) or 'the run'}; {hint}",
                              143 if isinstance(exc, Terminated) else 130) from None
        finally:
            workers.shutdown(wait=False)
        if board.failure is not None:
            raise board.failure

    def _start_ready(self, board: "_Board", manifest: Manifest, selection: Selection,
                     submit: Callable[["_Running"], Future]) -> None:
        """Start every stage that may start now: skip it, run it here (a host stage: Ctrl-C reaches this
        thread), or hand its task to a worker thread; a skip or a finished host stage may ready more."""
        while board.failure is None:
            startable = [n for n in ready(board.order, board.upstream, board.finished, board.started)
                         if self.planner.stage(n).run_on_host is not None or not board.gpus or board.free]
            if not startable or (board.limit is not None and len(board.running) >= board.limit):
                return
            stage = self.planner.stage(startable[0])
            step = self.planner.step(stage, manifest, selection, None)
            board.started.add(stage.name)
            if step.action == "skip":
                self.events.stage_skipped(step)
                board.finished.add(stage.name)
            elif stage.run_on_host is not None:
                job = self._begin(step, manifest, selection, None)
                self._ended(board, job, self._complete(job, lambda: self._work(job, None), manifest))
            else:
                job = self._begin(step, manifest, selection, board.free.pop(0) if board.gpus else None)
                board.running[submit(job)] = job

    def _ended(self, board: "_Board", job: "_Running", failure: TltPipeError | None) -> None:
        board.finished.add(job.step.name)
        if job.gpu is not None:
            board.free.append(job.gpu)
        if failure is not None and board.failure is None:
            board.failure = failure
            if board.running:
                names = ", ".join(j.step.name for j in board.running.values())
                self.events.line(job.step.name, f"tltpipe: {job.step.name} failed; waiting for {names} to finish "
                                                "(nothing else starts)")

    def _drain(self, running: dict[Future, "_Running"], manifest: Manifest) -> None:
        """After Ctrl-C: wait for the running stages to stop and record them interrupted. Another Ctrl-C
        meanwhile kills their jobs at once."""
        forced = False
        while running:
            try:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            except (KeyboardInterrupt, Terminated):
                if not forced:
                    forced = True
                    self._kill_jobs()
                continue
            for future in done:
                self._complete(running.pop(future), future.result, manifest)

    def _begin(self, step: Step, manifest: Manifest, selection: Selection, gpu: int | None) -> "_Running":
        """Record the stage as running, then tell the user."""
        stage = self.planner.stage(step.name)
        ctx = step.context or build_context(self.config, self.run_dir, manifest, self.key, selection, stage)
        plan = step.plan
        log_path = self.run_dir / "logs" / f"{step.name}.log"
        old = manifest.stages.get(step.name)
        keep = old is not None and old.status in ("succeeded", "pending")  # its folders hold a good result
        record = StageRecord(status="running", reason=step.reason, started=now(), image=plan.image,
                             argv=step.argv, inputs=dict(step.parts),
                             log=str(log_path.relative_to(self.run_dir)),
                             fingerprint=digest_of(step.parts),
                             resumed_from=dict(plan.resumed_from) if plan.resumed_from else None,
                             gpus=[gpu] if gpu is not None else None)
        manifest.stages[step.name] = record
        rank = {s.name: i for i, s in enumerate(self.stages)}  # in run order, whichever started first
        manifest.stages = dict(sorted(manifest.stages.items(), key=lambda item: rank.get(item[0], len(rank))))
        self._invalidate_dependents(step.name, manifest)
        save_manifest(self.run_dir, manifest)
        self.events.stage_started(step, log_path)
        return _Running(step, stage, ctx, plan, record, log_path, time.monotonic(), gpu, keep=keep)

    def _work(self, job: "_Running", cancel: threading.Event | None) -> RunResult | None:
        """The stage's files, then its task (a container or batch job: in a thread of its own)."""
        self._prepare_files(job.plan, job.record, job.log_path, fresh=not job.attempts,
                            keep_as=job.step.name if job.keep and not job.attempts else None)
        if job.stage.before_run is not None:
            job.stage.before_run(job.ctx, job.plan)
        if job.stage.run_on_host is not None:
            self._run_host(job.stage, job.ctx, job.plan, job.log_path, list(self.secrets))
            return None
        return self._run_container(job, cancel)

    def _complete(self, job: "_Running", outcome: Callable[[], RunResult | None],
                  manifest: Manifest) -> TltPipeError | None:
        """Record how a stage ended (outcome: its task's result, or what it raised); the error when it
        failed. Ctrl-C while a host stage runs is recorded, then passed on."""
        record, name = job.record, job.step.name
        try:
            result = outcome()
            record.exit_code = 0 if result is None else result.exit_code
            if result is not None:
                record.image_id, record.oom_killed = result.image_id, result.oom_killed
                record.job = {**(record.job or {}), **result.job} if result.job else record.job
            self._conclude(job.stage, job.ctx, job.plan, record, job.log_path, list(self.secrets))
        except Cancelled:
            self._kept(job)
            self._finish(record, "interrupted", job.started, manifest, name, error="interrupted")
            return None
        except (KeyboardInterrupt, Terminated):
            self._kept(job)
            self._finish(record, "interrupted", job.started, manifest, name, error="interrupted")
            raise
        except TltPipeError as exc:
            self._kept(job)
            self._finish(record, "failed", job.started, manifest, name, error=str(exc))
            return exc
        except BaseException as exc:
            self._kept(job)
            self._finish(record, "failed", job.started, manifest, name, error=redact(repr(exc), list(self.secrets)))
            raise
        finally:
            self.planner.forget()
        if not (self.run_dir / PREVIOUS).is_symlink():  # the new result replaces the kept one
            shutil.rmtree(self.run_dir / PREVIOUS / name, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.run_dir / PREVIOUS).rmdir()  # when no other stage keeps anything there
        self._finish(record, "succeeded", job.started, manifest, name)
        return None

    def _kept(self, job: "_Running") -> None:
        """Say where the outputs of the stage's last good run are, now that this run did not replace them."""
        kept = self.run_dir / PREVIOUS / job.step.name
        if kept.is_dir():
            note = f"the outputs of its last successful run are kept in {kept}"
            job.record.warnings.append(note)
            self.events.line(job.step.name, note)

    def _conclude(self, stage: Stage, ctx: Context, plan: StagePlan, record: StageRecord, log_path: Path,
                  secrets: list[str]) -> None:
        """Judge a finished task from its exit code, log and files: metrics and outputs, or StageFailed."""
        # Whatever the task wrote the key into (TAO writes it into nvinfer_config.txt and its resolved
        # experiment.yaml), in the stage's outputs and folders, loses it first, whether or not the stage succeeded.
        written = dict.fromkeys(ctx.workspace.host(p) for p in (*plan.outputs, *plan.clean))
        for path in scrub_files([*written, log_path], secrets):
            self.events.line(stage.name, f"removed the model key from {path} (it is never left on disk; "
                                         "give it to DeepStream yourself)")
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
        missing = [o for o in plan.outputs if not ctx.workspace.host(o).exists()]
        if missing:
            raise StageFailed(f"stage {stage.name} exited 0 but did not write {', '.join(missing)}")
        record.metrics = dict(outcome.metrics)
        record.artifacts = dict(outcome.artifacts)
        record.warnings = list(outcome.warnings)
        for warning in outcome.warnings:
            self.events.line(stage.name, f"warning: {warning}")
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

    def _prepare_files(self, plan: StagePlan, record: StageRecord, log_path: Path, *, fresh: bool = True,
                       keep_as: str | None = None) -> None:
        """Clean the stage's folders, write its specs, start its log (fresh: False when a requeued job runs
        again, continuing the log). keep_as: the stage whose folders hold its last good result, which is
        moved to PREVIOUS/<stage>/ until this run succeeds (a forced re-run that fails loses nothing)."""
        for rel in plan.clean:
            target = self.run_dir / rel
            if keep_as and target.is_dir() and not target.is_symlink() and any(target.iterdir()):
                kept = self.run_dir / PREVIOUS / keep_as / rel
                self._no_link_to(kept)
                shutil.rmtree(kept, ignore_errors=True)
                kept.parent.mkdir(parents=True, exist_ok=True)
                target.rename(kept)
            elif target.is_dir() and not target.is_symlink():
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
        if fresh or not log_path.exists():
            log_path.write_text("", encoding="utf-8")

    def _no_link_to(self, path: Path) -> None:
        """Refuse a symbolic link on the way from the run directory to path: removing or moving through one
        would reach files outside the run."""
        for part in reversed((path.relative_to(self.run_dir), *path.relative_to(self.run_dir).parents)):
            if (self.run_dir / part).is_symlink():
                raise ConfigError(f"{self.run_dir / part}: a link; tltpipe keeps a stage's last outputs below "
                                  f"{self.run_dir / PREVIOUS} and follows no link there: move it away")

    def _run_host(self, stage: Stage, ctx: Context, plan: StagePlan, log_path: Path, secrets: list[str]) -> None:
        with open(log_path, "a", encoding="utf-8") as log:
            def emit(text: str) -> None:
                text = redact(text, secrets)
                log.write(text + "\n")
                log.flush()
                self.events.line(stage.name, text)

            stage.run_on_host(ctx, plan, emit)

    def _run_container(self, job: "_Running", cancel: threading.Event | None) -> RunResult:
        ws = workspace_for(self.config, self.run_dir)
        env = tuple(sorted(self.config.runner.env.items())) + job.plan.env
        argv = provenance.probed(job.plan.argv) if job.plan.probe else job.plan.argv
        task = Task(image=job.plan.image or "", argv=argv, mounts=ws.mounts(), env=env,
                    workdir=str(self.run_dir) if ws.native else None, secrets=self.secrets,
                    gpus=(job.gpu,) if job.gpu is not None else None)
        name = job.step.name
        labels = {"tltpipe.run": str(self.run_dir), "tltpipe.stage": name, "tltpipe.name": self.config.name}
        return self.runner.run(task, log_path=job.log_path, labels=labels,
                               on_line=lambda text: self.events.line(name, text),
                               on_progress=lambda text: self.events.progress(name, text), cancel=cancel)

    # a batch job the scheduler took away -----------------------------------------------------
    def _requeued(self, job: "_Running", future: Future, manifest: Manifest) -> "_Running | None":
        """When the scheduler took a stage's job away before it ended (preempted, requeued, its node
        failed) and retries are left: the stage again, planned to continue (training: from its newest
        complete checkpoint). None: conclude it as it ended."""
        try:
            result = future.result()
        except BaseException:
            return None
        if result is None or not result.requeue:
            return None
        retries = self.config.runner.slurm.retries
        name = job.step.name
        if job.attempts >= retries:
            self._note(job, f"tltpipe: {result.requeue}; no retries left (runner.slurm.retries: {retries})")
            return None
        earlier = (job.record.job or {}).get("requeued", [])
        job.record.job = {**(job.record.job or {}), **(result.job or {}),
                          "requeued": [*earlier, {k: v for k, v in (result.job or {}).items() if k != "requeued"}]}
        ctx = build_context(self.config, self.run_dir, manifest, self.key, Selection(resume=True), job.stage)
        plan = job.stage.plan(ctx)
        where = (f"from epoch {plan.resumed_from['epoch']} ({plan.resumed_from['checkpoint']})"
                 if plan.resumed_from else "from the start")
        self._note(job, f"tltpipe: {result.requeue}; running {name} again {where} (retry {job.attempts + 1} of {retries})")
        job.record.argv = redact_argv(plan.argv, list(self.secrets))
        job.record.resumed_from = dict(plan.resumed_from) if plan.resumed_from else None
        save_manifest(self.run_dir, manifest)
        return replace(job, ctx=ctx, plan=plan, attempts=job.attempts + 1)

    def _note(self, job: "_Running", text: str) -> None:
        """A line of tltpipe's own in the stage's log and on the console."""
        with open(job.log_path, "a", encoding="utf-8") as log:
            log.write(text + "\n")
        self.events.line(job.step.name, text)


@dataclass
class _Board:
    """Where a run's stages stand while they run side by side."""

    order: list[str]
    upstream: dict[str, tuple[str, ...]]
    limit: int | None
    gpus: tuple[int, ...] | None
    free: list[int]  # the GPUs no running stage holds
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    running: dict[Future, "_Running"] = field(default_factory=dict)
    failure: TltPipeError | None = None


@dataclass(frozen=True)
class _Running:
    """A stage that has started: what it was planned from, its record, and how many times its job was
    taken away and run again."""

    step: Step
    stage: Stage
    ctx: Context
    plan: StagePlan
    record: StageRecord
    log_path: Path
    started: float
    gpu: int | None
    attempts: int = 0
    keep: bool = False  # its folders hold its last good result (kept in PREVIOUS until this run succeeds)


class _Serialized:
    """Events called from the threads stages run in, one call at a time."""

    def __init__(self, events: Events):
        self._events = events
        self._lock = threading.RLock()

    def __getattr__(self, name: str):
        method = getattr(self._events, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            with self._lock:
                return method(*args, **kwargs)

        return call
