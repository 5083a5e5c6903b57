"""Hyperparameter search with Optuna: `tltpipe tune`.

    tune.space (YAML) --suggest--> a trial's values --with_values--> its config --fanout--> trials/<values>/
    the training log's validation mAP per epoch --report--> Optuna's pruner --should_prune--> the trial stops
    evaluate's mAP --tell--> the study (study.db, in the tune directory) --> best.yaml, trials.csv, charts

The stages no key of the space changes (prepare, tfrecords, ...) run once, in base/. Each trial is an
ordinary run directory named for its values, so a trial cut short by a crash is picked up where it got
when the study is resumed. Optuna is imported here only, and only when a tuning runs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tlt_pipe.compare import flatten
from tlt_pipe.config import Config, TuneConfig, TuneParam, with_values
from tlt_pipe.errors import ConfigError, Interrupted
from tlt_pipe.manifest import Manifest, write_atomic
from tlt_pipe.progress import StageProgress

if TYPE_CHECKING:
    import optuna

    from tlt_pipe.fanout import Child, Outcome
    from tlt_pipe.pipeline import Events
    from tlt_pipe.runners.base import Runner

STUDY = "study.db"
SPACE = "tltpipe_space"  # the study's user attribute holding the tune.space it searches
BASE = "tltpipe_base"  # and the config its trials start from (flattened), less what does not change a result
_NOT_TRAINED = frozenset({"name", "run_dir", "runner", "docker", "tracking", "sweep", "tune", "deepstream"})
JOURNAL = "study.journal"
STALE = "tltpipe_stale"  # the study's user attribute: trials that were running when their tltpipe died


def stale_trials(study: "optuna.Study") -> list[int]:
    return list(study.user_attrs.get(STALE, []))


# --- pure parts -------------------------------------------------------------------------------------

def suggest(trial: "optuna.trial.BaseTrial", space: Mapping[str, TuneParam]) -> dict[str, Any]:
    """The trial's values for every key of the space."""
    values: dict[str, Any] = {}
    for key, param in space.items():
        if param.type == "categorical":
            values[key] = trial.suggest_categorical(key, param.choices)  # type: ignore[arg-type]
        elif param.type == "int":
            values[key] = trial.suggest_int(key, int(param.low), int(param.high),  # type: ignore[arg-type]
                                            step=int(param.step or 1), log=param.log)
        else:
            values[key] = trial.suggest_float(key, param.low, param.high, step=param.step, log=param.log)  # type: ignore[arg-type]
    return values


def probes(space: Mapping[str, TuneParam]) -> list[dict[str, Any]]:
    """Values that tell which stages the space can change: every key at one end of its range, then each
    key alone at the other end."""
    def ends(param: TuneParam) -> tuple[Any, Any]:
        if param.type == "categorical":
            choices = param.choices or [None]
            return choices[0], choices[-1]
        low, high = param.low, param.high
        return (int(low), int(high)) if param.type == "int" else (low, high)  # type: ignore[arg-type]

    first = {key: ends(param)[0] for key, param in space.items()}
    return [first] + [{**first, key: ends(param)[1]} for key, param in space.items()]


def trial_folder(values: Mapping[str, Any]) -> str:
    """A trial's run directory name: the same values, the same folder (a resumed trial finds its work)."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"trial-{digest}"


def best_config_text(config: Config, values: Mapping[str, Any], *, value: float, trial: int, source: str) -> str:
    """The config with the best trial's values, as YAML `tltpipe run` takes (paths absolute)."""
    best = with_values(config, values, source=source)
    data = best.model_dump(mode="json", exclude={"notes", "sweep", "tune"}, exclude_unset=True)
    header = (f"# The best trial ({trial}) of `tltpipe tune --config {source}`: mAP {value:.4f} with\n"
              + "".join(f"#   {k}: {v}\n" for k, v in values.items()) + "# Run it: tltpipe run "
              f"{config.network} --config <this file>\n")
    return header + yaml.safe_dump(data, sort_keys=False)


def trials_csv(rows: list[dict[str, Any]], keys: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "state", "mAP", "pruned_at_epoch", *keys, "run_dir"])
    for row in rows:
        writer.writerow([row["number"], row["state"], "" if row["value"] is None else row["value"],
                         "" if row.get("pruned_at") is None else row["pruned_at"],
                         *["" if row["params"].get(k) is None else row["params"][k] for k in keys], row["run_dir"]])
    return out.getvalue()


# --- running a study ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TuneResult:
    tune_dir: Path
    best: dict[str, Any] | None  # {number, value, params, run_dir}
    trials: list[dict[str, Any]]  # {number, state, value, params, pruned_at, run_dir}
    files: dict[str, Path]  # best (best.yaml), csv, history, importance


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("tltpipe tune needs Optuna: pip install 'tltpipe[tune]' (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(tune_dir: Path, settings: TuneConfig, name: str, base: Config | None = None) -> "optuna.Study":
    """The study kept in the tune directory (created, or loaded to go on). base: the config every trial starts
    from; a study gone on with must have searched the same space from the same config."""
    optuna = _optuna()
    if settings.storage == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage: Any = JournalStorage(JournalFileBackend(str(tune_dir / JOURNAL)))
    else:
        storage = f"sqlite:///{tune_dir / STUDY}"
    def sampler(seed: int | None) -> Any:
        return (optuna.samplers.RandomSampler(seed=seed) if settings.sampler == "random"
                else optuna.samplers.TPESampler(seed=seed))
    if settings.pruner == "none":
        pruner: Any = optuna.pruners.NopPruner()
    elif settings.pruner == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=max(1, settings.warmup_epochs))
    else:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials,
                                             n_warmup_steps=settings.warmup_epochs)
    kept = tune_dir / (JOURNAL if settings.storage == "journal" else STUDY)
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler(settings.seed), pruner=pruner,
                                    direction="maximize", load_if_exists=True)
        done = len(study.get_trials(deepcopy=False))
    except (ImportError, OSError):  # Optuna without sqlalchemy is Optuna's message; a full disk is not a bad study
        raise
    except Exception as exc:  # noqa: BLE001 - the storage's own errors (sqlalchemy, JSON), whatever the backend
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"{kept}: cannot open the study kept there ({first}); move it away to start a new "
                          "study, or give the tune another directory") from None
    # What makes the study's trials comparable: the space searched and the config each trial starts from.
    space = {key: param.model_dump(mode="json") for key, param in sorted(settings.space.items())}
    what = [(SPACE, space, "searched another space (tune.space differs at {})")]
    if base is not None:
        trained = {k: v for k, v in base.model_dump(mode="json").items() if k not in _NOT_TRAINED}
        what.append((BASE, flatten(trained), "started its trials from another config (it differs at {})"))
    for attr, now, differs in what:
        before = study.user_attrs.get(attr)
        if done and before is not None and before != now:
            changed = sorted(k for k in {*now, *before} if now.get(k) != before.get(k))
            raise ConfigError(f"{kept}: its study {differs.format(', '.join(changed[:6]))}; trials are compared "
                              "only within one study: give the tune another directory, or restore it")
        if before != now:  # a new study, or one without trials yet
            study.set_user_attr(attr, now)
    if done and settings.seed is not None:  # a study gone on with: not the same draws as its first trials
        study.sampler = sampler((settings.seed + done) % 2**32)  # Optuna's samplers take 0..2**32-1
    return study


class _Study:
    """The trials of one `tltpipe tune` command: asked one at a time as a slot frees up, watched while they
    train (the pruner), and told how they ended. Called from the trials' threads, hence the lock."""

    def __init__(self, study: "optuna.Study", config: Config, settings: TuneConfig, tune_dir: Path,
                 say: Callable[[str], None], stop: Callable[[str], None]):
        self.study, self.config, self.settings, self.tune_dir = study, config, settings, tune_dir
        self.say, self.stop = say, stop
        self.lock = threading.Lock()
        self.open: dict[str, "optuna.Trial"] = {}  # child name -> trial
        self.progress: dict[str, StageProgress] = {}
        self.pruned: dict[str, int] = {}  # child name -> the epoch it was stopped at

    def fail_stale(self) -> list[dict[str, Any]]:
        """Trials left running by a tltpipe that died (this one holds the tune directory's lock): failed,
        and their values asked again first, so the same run directory carries on."""
        optuna = _optuna()
        stale = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if stale:
            self.study.set_user_attr(STALE, sorted({*stale_trials(self.study), *(t.number for t in stale)}))
        for trial in stale:
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            self.study.enqueue_trial(dict(trial.params), skip_if_exists=False)
        return [dict(t.params) for t in stale]

    def finished(self) -> int:
        optuna = _optuna()
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
        stale = set(stale_trials(self.study))
        return sum(1 for t in self.study.get_trials(deepcopy=False, states=done) if t.number not in stale)

    def children(self) -> Iterator["Child"]:
        from tlt_pipe.fanout import Child

        while True:
            with self.lock:
                if self.finished() + len(self.open) >= self.settings.trials:
                    return
                trial = self.study.ask()
                values = suggest(trial, self.settings.space)
                name = f"trial-{trial.number}"
                run_dir = self.tune_dir / "trials" / trial_folder(values)
                trial.set_user_attr("run_dir", str(run_dir))
                self.open[name] = trial
                self.progress[name] = StageProgress("train", started=time.monotonic())
            config = with_values(self.config, values, source=f"tune {name}")
            self.say(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()) + f" ({run_dir.name})")
            yield Child(name, config, run_dir)

    def watch(self, child: "Child", stage: str, text: str) -> None:
        """Each validation mAP of the trial's training goes to the pruner, which may stop the trial."""
        if stage != "train":
            return
        with self.lock:
            trial, progress = self.open.get(child.name), self.progress.get(child.name)
            if trial is None or progress is None or child.name in self.pruned:
                return
            before = progress.map
            progress.feed_line(text, time.monotonic())
            if progress.map is None or progress.map == before or progress.epoch is None:
                return
            trial.report(progress.map, progress.epoch)
            if not trial.should_prune():
                return
            self.pruned[child.name] = progress.epoch
        self.say(f"{child.name}: pruned at epoch {progress.epoch}: validation mAP {progress.map:.4f} lags the "
                 "other trials; stopping it")
        self.stop(child.name)

    def ended(self, child: "Child", outcome: "Outcome") -> None:
        optuna = _optuna()
        with self.lock:
            trial = self.open.pop(child.name)
            pruned_at = self.pruned.get(child.name)
            value = _map(outcome.manifest, self.settings.to)
            if pruned_at is None and isinstance(outcome.error, Interrupted):
                # Ctrl-C: left running in the study, as after a crash; the next `tltpipe tune` runs it again.
                self.say(f"{child.name}: interrupted; the same command runs it again")
                return
            if pruned_at is not None:
                trial.set_user_attr("pruned_at", pruned_at)
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                said = f"pruned at epoch {pruned_at}"
            elif outcome.error is None and value is not None:
                self.study.tell(trial, value)
                said = f"mAP {value:.4f}"
            else:
                trial.set_user_attr("error", str(outcome.error or f"no mAP from {self.settings.to}"))
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                said = f"failed: {outcome.error or 'no mAP'}"
        self.say(f"{child.name}: {said}")


def _map(manifest: Manifest | None, stage: str) -> float | None:
    value = manifest.metric(stage, "mAP") if manifest is not None else None
    return float(value) if isinstance(value, (int, float)) else None


def run_tune(config: Config, *, tune_dir: Path, key: str | None, events: "Events",
             runner_factory: Callable[[Config], "Runner"], trials: int | None = None, jobs: int | None = None,
             say: Callable[[str], None] | None = None) -> TuneResult:
    """Run (or go on with) the study until it holds `trials` finished trials; then write best.yaml, trials.csv,
    history.png and importance.png into tune_dir. say: where the study's own news goes (a trial's values,
    its end, a pruning); default: the events, as lines of "tune"."""
    say = say or (lambda text: events.line("tune", text))
    from tlt_pipe.fanout import Fanout
    from tlt_pipe.planner import Planner, Selection
    from tlt_pipe.runlock import RunLock
    from tlt_pipe.sweeps import shared_stages

    settings = config.tune.model_copy(update={k: v for k, v in (("trials", trials), ("jobs", jobs)) if v})
    if not settings.space:
        raise ConfigError("tune.space: nothing to search; give the keys and their ranges, e.g. "
                          "tune: {space: {train.learning_rate.max: {type: float, low: 1e-5, high: 1e-2, log: true}}}")
    selection = Selection(to_stage=settings.to)
    tune_dir = tune_dir.resolve()
    base_dir = tune_dir / "base"
    plans = [Planner(with_values(config, values, source="tune.space"), base_dir, key).plan(selection, None)
             for values in probes(settings.space)]
    shared = shared_stages(plans)
    tune_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(tune_dir):
        fanout = Fanout(key=key, events=events, runner_factory=runner_factory, jobs=settings.jobs)
        study = _Study(open_study(tune_dir, settings, config.name, config), config, settings, tune_dir, say,
                       fanout.stop)
        for values in study.fail_stale():
            say(f"a trial left running by an earlier tltpipe is run again: {values}")
        fanout.run_base(config, base_dir, shared, selection)
        fanout.run_children(study.children(), config.runner, base_dir if shared else None, shared, selection,
                            on_end=study.ended, on_line=study.watch)
        return _write_results(config, settings, study.study, tune_dir)


def _write_results(config: Config, settings: TuneConfig, study: "optuna.Study", tune_dir: Path) -> TuneResult:
    optuna = _optuna()
    rows = []
    stale = set(stale_trials(study))
    for trial in study.get_trials(deepcopy=False):
        if trial.number in stale:
            continue
        rows.append({"number": trial.number, "state": trial.state.name.lower(), "value": trial.value,
                     "params": dict(trial.params), "pruned_at": trial.user_attrs.get("pruned_at"),
                     "run_dir": trial.user_attrs.get("run_dir", "")})
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    best = None
    files = {"csv": tune_dir / "trials.csv", "history": tune_dir / "history.png",
             "importance": tune_dir / "importance.png", "best": tune_dir / "best.yaml"}
    write_atomic(files["csv"], trials_csv(rows, list(settings.space)))
    if complete:
        winner = max(complete, key=lambda t: t.value)
        best = {"number": winner.number, "value": winner.value, "params": dict(winner.params),
                "run_dir": winner.user_attrs.get("run_dir", "")}
        write_atomic(files["best"], best_config_text(config, winner.params, value=winner.value, trial=winner.number,
                                                     source=str(config.name)))
    importances = {}
    if len(complete) >= 2:
        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # too few distinct values to tell
            importances = {}
    from tlt_pipe import charts

    write_atomic(files["history"], charts.png(_history_chart(rows)))
    write_atomic(files["importance"], charts.png(_importance_chart(importances)))
    return TuneResult(tune_dir, best, rows, files)


def _history_chart(rows: list[dict[str, Any]]):
    from tlt_pipe import charts

    done = [(float(r["number"]), r["value"]) for r in rows if r["state"] == "complete"]
    best, running = [], None
    for x, y in done:
        running = y if running is None else max(running, y)
        best.append((x, running))
    return charts.line_chart("Optimization history", {"mAP of each trial": done, "best so far": best},
                             xlabel="trial", ylabel="mAP")


def _importance_chart(importances: Mapping[str, float]):
    from tlt_pipe import charts

    keys = list(importances)
    return charts.bar_chart("Parameter importance", keys, {"importance": [importances[k] for k in keys]},
                            ylabel="share of the mAP's variance")

