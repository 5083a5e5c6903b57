"""Several runs of one config side by side, sharing the stages they have in common: a sweep's points
and a tuning's trials.

The shared leading stages run once, in base/. Each child is an ordinary run directory that starts as
a copy of them: their files hard-linked (no space, no time), their manifest records rewritten to the
child's paths, so the child's own plan skips them as up to date and runs only the rest. `show`,
`report`, `compare` and a plain `tltpipe run` work on a child like on any run.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tlt_pipe import __version__
from tlt_pipe.config import Config, RunnerConfig
from tlt_pipe.errors import ConfigError, Interrupted, TltPipeError
from tlt_pipe.manifest import Manifest, StageRecord, load_manifest, save_manifest
from tlt_pipe.pipeline import Events, Pipeline, Terminated
from tlt_pipe.planner import Selection
from tlt_pipe.runners.base import Runner
from tlt_pipe.schedule import slots_for


# --- a child run directory from the base's records -----------------------------------------------

def seed(base: Path, child: Path, stages: Sequence[str]) -> None:
    """Give a new child run directory the base's finished stages: files hard-linked, records copied with
    the base's paths turned into the child's. A child that has a manifest already is left as it is."""
    if (child / "manifest.json").exists():
        return
    source = load_manifest(base)
    if source is None:
        raise ConfigError(f"{base}: no manifest to share stages from")
    target = Manifest(tltpipe=__version__, name=source.name, network=source.network, toolkit=source.toolkit)
    moved = _path_rewriter(base.resolve(), child.resolve())
    for name in stages:
        record = source.stages.get(name)
        if record is None or record.status != "succeeded":
            raise ConfigError(f"{base}: stage {name} has not succeeded there; it cannot be shared")
        for output in record.outputs:
            _link(Path(output["path"]), Path(moved(output["path"])))
        for rel in [spec["path"] for spec in record.specs] + ([record.log] if record.log else []):
            if (base / rel).is_file():
                (child / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(base / rel, child / rel)  # copied: a re-run rewrites a log in place
        copy = StageRecord.model_validate(_rewrite(record.model_dump(mode="json"), moved))
        copy.fingerprint = record.fingerprint  # what the stages after it recorded as their upstream
        copy.reason = f"shared with {base}"
        target.stages[name] = copy
    save_manifest(child, target)


def _path_rewriter(base: Path, child: Path) -> Callable[[str], str]:
    pattern = re.compile(re.escape(str(base)) + r"(?=/|\s|$|')")
    return lambda text: pattern.sub(str(child).replace("\\", "\\\\"), text)


def _rewrite(value: Any, moved: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return moved(value)
    if isinstance(value, list):
        return [_rewrite(v, moved) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, moved) for k, v in value.items()}
    return value


def _link(source: Path, target: Path) -> None:
    """Hard-link a file, or every file of a folder (a copy where the filesystem cannot link)."""
    if source.is_dir():
        for root, _, files in os.walk(source):
            for name in files:
                _link(Path(root) / name, target / Path(root).relative_to(source) / name)
        target.mkdir(parents=True, exist_ok=True)
        return
    if not source.is_file() or target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# --- running the children -------------------------------------------------------------------------

@dataclass(frozen=True)
class Child:
    """One child run: its name (shown before its stages), its config and its run directory."""

    name: str
    config: Config
    run_dir: Path


class Prefixed:
    """A child's events as its parent shows them: every stage named `<child>/<stage>`."""

    def __init__(self, events: Events, prefix: str, on_line: Callable[[str, str], None] | None = None):
        self.events = events
        self.prefix = prefix
        self.on_line = on_line  # (stage, text) of every complete line, before it is shown

    def _step(self, step):
        return replace(step, name=f"{self.prefix}/{step.name}")

    def plan(self, run_dir: Path, steps) -> None:
        skipped = [s.name for s in steps if s.action == "skip"]
        self.events.line(self.prefix, f"{run_dir}: runs {', '.join(s.name for s in steps if s.action == 'run') or 'nothing'}"
                         + (f"; up to date: {', '.join(skipped)}" if skipped else ""))

    def stage_skipped(self, step) -> None:
        """Said once, in the plan line."""

    def stage_started(self, step, log_path: Path) -> None:
        self.events.stage_started(self._step(step), log_path)

    def line(self, stage: str, text: str) -> None:
        if self.on_line is not None:
            self.on_line(stage, text)
        self.events.line(f"{self.prefix}/{stage}", text)

    def progress(self, stage: str, text: str) -> None:
        self.events.progress(f"{self.prefix}/{stage}", text)

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        self.events.stage_finished(f"{self.prefix}/{stage}", record)


@dataclass
class Outcome:
    """How a child ended: its manifest, and the error that stopped it (None when it succeeded)."""

    manifest: Manifest | None
    error: TltPipeError | None = None


class Fanout:
    """Runs a base run, then children side by side: up to `jobs` at once (None: one per GPU of a gpus
    list, else 1), each child on its own GPU when the config lists several. Ctrl-C stops every child.
    on_end(child, outcome) and on_line(child, stage, text) are called from the child's threads."""

    def __init__(self, *, key: str | None, events: Events, runner_factory: Callable[[Config], Runner],
                 jobs: int | None = None):
        self.key = key
        self.events = events
        self.runner_factory = runner_factory
        self.jobs = jobs
        self._active: dict[str, Pipeline] = {}
        self._stopped = False
        self._lock = threading.Lock()

    def run_base(self, config: Config, base_dir: Path, shared: Sequence[str], selection: Selection) -> Manifest | None:
        """The shared stages, once (in this thread: Ctrl-C stops them as in a plain run)."""
        if not shared:
            return None
        pipeline = Pipeline(config, base_dir, key=self.key, events=Prefixed(self.events, "base"),
                            runner_factory=lambda: self.runner_factory(config))
        return pipeline.run(replace(selection, from_stage=None, to_stage=shared[-1]))

    def run_children(self, children: Iterable[Child], runner: RunnerConfig, base_dir: Path | None,
                     shared: Sequence[str], selection: Selection, *,
                     on_end: Callable[[Child, Outcome], None] | None = None,
                     on_line: Callable[[Child, str, str], None] | None = None) -> dict[str, Outcome]:
        """Every child (seeded from base_dir's shared stages), side by side; each one's outcome. children is
        read lazily, one child each time a slot is free (a tuner decides the next trial then); runner: the
        runner settings that say how many slots and GPUs there are."""
        slots = slots_for(runner.model_copy(update={"jobs": self.jobs}))
        free = list(slots.gpus or ())
        outcomes: dict[str, Outcome] = {}
        source = iter(children)
        exhausted = False
        running: dict[Future, tuple[Child, int | None]] = {}
        pool = ThreadPoolExecutor(max_workers=slots.limit or 64, thread_name_prefix="tltpipe-child")
        hooks = (on_end, on_line)
        try:
            while True:
                while not exhausted and (slots.limit is None or len(running) < slots.limit) and (not slots.gpus or free):
                    child = next(source, None)
                    if child is None:
                        exhausted = True
                        break
                    gpu = free.pop(0) if slots.gpus else None
                    running[pool.submit(self._child, child, gpu, base_dir, shared, selection, *hooks)] = (child, gpu)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    child, gpu = running.pop(future)
                    outcomes[child.name] = future.result()
                    if gpu is not None:
                        free.append(gpu)
        except (KeyboardInterrupt, Terminated) as exc:
            self.stop_all()
            while True:
                try:
                    wait(running)
                    break
                except (KeyboardInterrupt, Terminated):  # once more: kill their jobs at once
                    self.stop_all(now=True)
            raise Interrupted("interrupted; run the same command to continue (finished work is kept)",
                              143 if isinstance(exc, Terminated) else 130) from None
        finally:
            pool.shutdown(wait=False)
        return outcomes

    def stop(self, name: str) -> None:
        """Stop one running child (its stages are recorded interrupted)."""
        with self._lock:
            pipeline = self._active.get(name)
        if pipeline is not None:
            pipeline.stop()

    def stop_all(self, *, now: bool = False) -> None:
        """Stop every child, those not yet started too."""
        with self._lock:
            self._stopped = True
            pipelines = list(self._active.values())
        for pipeline in pipelines:
            pipeline.stop(now=now)

    def _child(self, child: Child, gpu: int | None, base_dir: Path | None, shared: Sequence[str], selection: Selection,
               on_end, on_line) -> Outcome:
        config = child.config
        if gpu is not None:
            config = config.model_copy(update={"runner": config.runner.model_copy(update={"gpus": [gpu]})})
        watch = (lambda stage, text: on_line(child, stage, text)) if on_line is not None else None
        pipeline = Pipeline(config, child.run_dir, key=self.key, events=Prefixed(self.events, child.name, watch),
                            runner_factory=lambda: self.runner_factory(config))
        with self._lock:
            self._active[child.name] = pipeline
            if self._stopped:  # Ctrl-C came before this child's thread got going
                pipeline.stop()
        try:
            try:
                if base_dir is not None and shared:
                    seed(base_dir, child.run_dir, shared)
                outcome = Outcome(pipeline.run(selection))
            except TltPipeError as exc:
                outcome = Outcome(_manifest_of(child.run_dir), exc)
        finally:
            with self._lock:
                self._active.pop(child.name, None)
        if on_end is not None:
            on_end(child, outcome)
        return outcome


def _manifest_of(run_dir: Path) -> Manifest | None:
    try:
        return load_manifest(run_dir)
    except ConfigError:
        return None
