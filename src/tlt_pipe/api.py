"""tltpipe as a library: what `tltpipe run` does, callable from Python.

    import tlt_pipe
    config = tlt_pipe.load_config("lpd.yaml", overrides=["runner.gpus=0"])
    for step in tlt_pipe.plan(config):
        print(step.name, step.action, step.reason, " ".join(step.argv))
    manifest = tlt_pipe.run(config, stages=("train", "evaluate"))
    print(manifest.stages["evaluate"].metrics["mAP"])
    result = tlt_pipe.sweep(config, {"prune.threshold": [0.1, 0.3, 0.5, 0.7]}, jobs=2)
    print(result.recommended)

Errors are tlt_pipe.errors.TltPipeError subclasses carrying the command line's exit code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlt_pipe.config import Config
from tlt_pipe.config import load_config as _load
from tlt_pipe.manifest import Manifest
from tlt_pipe.pipeline import Events, Pipeline
from tlt_pipe.planner import Selection, Step
from tlt_pipe.runners import runner_for
from tlt_pipe.runners.base import Runner
from tlt_pipe.secrets import read_key

if TYPE_CHECKING:
    from tlt_pipe.sweeps import SweepResult

Stages = str | tuple[str | None, str | None] | None


class Quiet:
    """Events that go nowhere: the default when a script does not watch a run."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def load_config(path: str | Path, *, network: str | None = None, overrides: Sequence[str] = ()) -> Config:
    """A validated config; overrides are `key=value` strings as `--set` takes them."""
    return _load(Path(path), network=network, sets=tuple(overrides))


def _selection(stages: Stages, *, force: bool, resume: bool, resume_epoch: int | None) -> Selection:
    first, last = (stages, stages) if isinstance(stages, str) else (stages or (None, None))
    return Selection(first, last, force, resume, resume_epoch)


def _pipeline(config: Config, run_dir: str | Path | None, key: str | None, events: Events | None,
              runner: Runner | None) -> Pipeline:
    return Pipeline(config, Path(run_dir) if run_dir else config.default_run_dir(),
                    key=read_key() if key is None else key, events=events or Quiet(),
                    runner_factory=(lambda: runner) if runner is not None else (lambda: runner_for(config)))


def plan(config: Config, *, run_dir: str | Path | None = None, stages: Stages = None, force: bool = False,
         resume: bool = False, resume_epoch: int | None = None, key: str | None = None) -> list[Step]:
    """What a run would do, stage by stage (run or skip, and why; the exact command), starting nothing.

    stages: None (all), one stage name, or (first, last) with None for an open end."""
    selection = _selection(stages, force=force, resume=resume, resume_epoch=resume_epoch)
    return _pipeline(config, run_dir, key, None, None).dry_run(selection)


def run(config: Config, *, run_dir: str | Path | None = None, runner: Runner | None = None,
        events: Events | None = None, stages: Stages = None, force: bool = False, resume: bool = False,
        resume_epoch: int | None = None, key: str | None = None) -> Manifest:
    """Run (or skip, when up to date) the selected stages; the manifest of the run directory.

    runner: how tasks run (default: the config's runner); key: the model key (default: TLTPIPE_KEY)."""
    selection = _selection(stages, force=force, resume=resume, resume_epoch=resume_epoch)
    return _pipeline(config, run_dir, key, events, runner).run(selection)


def sweep(config: Config, params: Mapping[str, Sequence[Any]], *, sweep_dir: str | Path | None = None,
          runner: Runner | None = None, events: Events | None = None, retrain: bool = True,
          to_stage: str | None = None, jobs: int | None = None, max_drop: float = 0.02,
          key: str | None = None) -> "SweepResult":
    """Run the config at every combination of params' values (config key -> values), sharing the stages
    the points have in common, and tabulate them (tlt_pipe.sweeps.SweepResult: rows, recommended, files).

    sweep_dir: default <run directory>-sweep; jobs: points at once."""
    from tlt_pipe.sweeps import run_sweep

    return run_sweep(config, params, sweep_dir=Path(sweep_dir) if sweep_dir else config.default_sweep_dir(),
                     key=read_key() if key is None else key, events=events or Quiet(),
                     runner_factory=(lambda c: runner) if runner is not None else runner_for, retrain=retrain,
                     to_stage=to_stage, jobs=jobs, max_drop=max_drop)
