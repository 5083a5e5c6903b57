"""tltpipe tune: the search space, the trials' run directories, pruning from the training log's validation
mAP, the best config, and a study picked up again after its tltpipe died (fake_runner.py, in process)."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import optuna  # a test dependency: the tuning is not skipped where it is missing
import pytest
import yaml

import tlt_pipe
from tlt_pipe.api import Quiet
from tlt_pipe.config import TuneParam, with_values
from tlt_pipe.errors import ConfigError, Interrupted
from tlt_pipe.tune import open_study, probes, run_tune, trial_folder

from fake_runner import KEY, FakeRunner

SPACE = {"train.learning_rate.max": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
         "train.batch_size": {"type": "categorical", "choices": [4, 8]}}


def test_the_probes_move_each_key_alone_to_the_other_end():
    space = {k: TuneParam(**v) for k, v in SPACE.items()}
    assert probes(space) == [{"train.learning_rate.max": 1e-6, "train.batch_size": 4},
                             {"train.learning_rate.max": 1e-1, "train.batch_size": 4},
                             {"train.learning_rate.max": 1e-6, "train.batch_size": 8}]
    assert trial_folder({"a": 1, "b": 2}) == trial_folder({"b": 2, "a": 1}) != trial_folder({"a": 1, "b": 3})


def test_a_bad_space_is_named():
    with pytest.raises(ValueError, match="low < high"):
        TuneParam(type="float", low=1.0, high=0.1)
    with pytest.raises(ValueError, match="needs choices"):
        TuneParam(type="categorical")
    with pytest.raises(ValueError, match="an int parameter takes whole numbers for low, high and step, not 1.5, 4"):
        TuneParam(type="int", low=1.5, high=4)  # once accepted, and Optuna drew from 1.5 up in whole steps
    with pytest.raises(ValueError, match="not 1, 8, 0.5"):
        TuneParam(type="int", low=1, high=8, step=0.5)
    with pytest.raises(ValueError, match="log: true and step do not go together"):
        TuneParam(type="float", low=0.1, high=1, log=True, step=0.1)
    with pytest.raises(ValueError, match="choices belong to a categorical parameter, not a float one"):
        TuneParam(type="float", low=0.1, high=1, choices=[0.5])
    with pytest.raises(ValueError, match="a categorical parameter takes choices, not low, high or step"):
        TuneParam(type="categorical", choices=[1, 2], low=0)
    assert TuneParam(type="int", low=1.0, high=8, step=2).step == 2


def _tuned(config, **tune):
    return with_values(config, {"tune": {"space": SPACE, "startup_trials": 2, "seed": 3, **tune}}, source="test")


@pytest.mark.usefixtures("emulated_tao")
def test_a_study_prunes_lagging_trials_writes_the_best_config_and_goes_on_later(emulated_config, tmp_path):
    config = _tuned(emulated_config, trials=6)
    runner = FakeRunner()
    result = run_tune(config, tune_dir=tmp_path / "tune", key=KEY, events=Quiet(),
                      runner_factory=lambda c: runner, jobs=2)
    states = [t["state"] for t in result.trials]
    assert len(states) == 6 and "pruned" in states and "complete" in states, result.trials
    assert runner.ran.count("tfrecords") == 1  # shared, in base/: no key of the space changes it
    assert runner.ran.count("train") == 6
    complete = [t for t in result.trials if t["state"] == "complete"]
    assert result.best["value"] == max(t["value"] for t in complete)
    best = tlt_pipe.load_config(result.files["best"])  # ready for tltpipe run
    assert best.train.learning_rate.max == pytest.approx(result.best["params"]["train.learning_rate.max"])
    assert best.train.batch_size == result.best["params"]["train.batch_size"] and not best.tune.space
    rows = list(csv.DictReader(result.files["csv"].open(encoding="utf-8")))
    assert [r["state"] for r in rows] == states and all(r["run_dir"] for r in rows)
    assert result.files["history"].read_bytes().startswith(b"\x89PNG")
    assert result.files["importance"].read_bytes().startswith(b"\x89PNG")
    pruned = next(t for t in result.trials if t["state"] == "pruned")
    assert pruned["pruned_at"] >= 1

    # Going on: two trials more, the six before counted.
    runner.ran.clear()
    more = run_tune(config, tune_dir=tmp_path / "tune", key=KEY, events=Quiet(), runner_factory=lambda c: runner,
                    trials=8)
    assert len(more.trials) == 8 and runner.ran.count("train") == 2


@pytest.mark.usefixtures("emulated_tao")
def test_a_trial_its_tltpipe_left_running_runs_again_in_the_same_folder(emulated_config, tmp_path):
    config = _tuned(emulated_config, trials=2, pruner="none")
    tune_dir = tmp_path / "tune"
    tune_dir.mkdir()
    study = open_study(tune_dir, config.tune, config.name)
    dead = study.ask({"train.learning_rate.max": optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True),
                      "train.batch_size": optuna.distributions.CategoricalDistribution([4, 8])})  # never told
    runner = FakeRunner()
    result = run_tune(config, tune_dir=tune_dir, key=KEY, events=Quiet(), runner_factory=lambda c: runner)
    assert [t["state"] for t in result.trials] == ["complete", "complete"]  # the dead one is not counted
    again = result.trials[0]
    assert again["params"] == dead.params and again["run_dir"].endswith(trial_folder(dead.params))


def test_a_study_seeded_at_the_top_of_the_range_goes_on_with_a_seed_in_range(emulated_config, tmp_path):
    config = _tuned(emulated_config, seed=2**32 - 1)
    space = {"train.batch_size": optuna.distributions.CategoricalDistribution([4, 8])}
    first = open_study(tmp_path, config.tune, config.name)
    first.tell(first.ask(space), 0.5)
    again = open_study(tmp_path, config.tune, config.name)  # seed + 1 trial done: past 2**32 - 1
    assert again.ask(space).params["train.batch_size"] in (4, 8)


@pytest.mark.parametrize("storage, file, content", [("sqlite", "study.db", b"not a database" * 100),
                                                    ("journal", "study.journal", b"{not json\n")])
def test_a_damaged_study_file_is_named_and_kept(emulated_config, tmp_path, storage, file, content):
    config = _tuned(emulated_config, storage=storage)
    (tmp_path / file).write_bytes(content)  # once a sqlalchemy or JSON traceback
    with pytest.raises(ConfigError) as info:
        open_study(tmp_path, config.tune, config.name)
    assert str(info.value).startswith(f"{tmp_path / file}: cannot open the study kept there (")
    assert str(info.value).endswith("move it away to start a new study, or give the tune another directory")
    assert (tmp_path / file).read_bytes().startswith(content)  # kept (a journal is only ever appended to)


def test_a_study_over_another_space_is_not_gone_on_with(emulated_config, tmp_path):
    config = _tuned(emulated_config)
    space = {"train.batch_size": optuna.distributions.CategoricalDistribution([4, 8])}
    first = open_study(tmp_path, config.tune, config.name)
    first.tell(first.ask(space), 0.5)
    assert open_study(tmp_path, config.tune, config.name).user_attrs  # the same space: gone on with
    other = _tuned(emulated_config, space={**SPACE, "train.batch_size": {"type": "categorical", "choices": [2, 4]}})
    with pytest.raises(ConfigError) as info:  # once mixed into one study, its best compared across spaces
        open_study(tmp_path, other.tune, other.name)
    assert str(info.value) == (f"{tmp_path / 'study.db'}: its study searched another space (tune.space differs at "
                               "train.batch_size); trials are compared only within one study: give the tune another "
                               "directory, or restore it")


def test_a_study_whose_trials_started_from_another_config_is_not_gone_on_with(emulated_config, tmp_path):
    config = _tuned(emulated_config)
    space = {"train.batch_size": optuna.distributions.CategoricalDistribution([4, 8])}
    first = open_study(tmp_path, config.tune, config.name, config)
    first.tell(first.ask(space), 0.5)
    other_runner = with_values(config, {"runner.jobs": 2, "tune.trials": 40}, source="test")  # how, not what
    assert open_study(tmp_path, other_runner.tune, other_runner.name, other_runner).user_attrs
    fewer = with_values(config, {"train.epochs": 3}, source="test")  # once ranked against 4-epoch trials
    with pytest.raises(ConfigError) as info:
        open_study(tmp_path, fewer.tune, fewer.name, fewer)
    assert str(info.value).startswith(f"{tmp_path / 'study.db'}: its study started its trials from another config "
                                      "(it differs at train.epochs)")


def test_without_a_space_it_says_what_to_write(emulated_config, tmp_path):
    with pytest.raises(ConfigError, match="tune.space: nothing to search"):
        run_tune(emulated_config, tune_dir=tmp_path, key=KEY, events=Quiet(), runner_factory=lambda c: None)
    assert yaml.safe_load("a: 1")  # yaml is the config's language; keep the import honest


@pytest.mark.usefixtures("emulated_tao")
def test_a_journal_file_holds_the_study_for_hosts_that_share_a_filesystem(emulated_config, tmp_path):
    config = _tuned(emulated_config, trials=2, pruner="none", storage="journal",
                    space={**SPACE, "spec_overrides.train.augmentation_config.hue": {"type": "int", "low": 0,
                                                                                     "high": 20}})
    result = run_tune(config, tune_dir=tmp_path / "tune", key=KEY, events=Quiet(), runner_factory=lambda c: FakeRunner())
    assert (tmp_path / "tune" / "study.journal").stat().st_size > 0 and not (tmp_path / "tune" / "study.db").exists()
    assert [t["state"] for t in result.trials] == ["complete", "complete"]
    hue = result.trials[0]["params"]["spec_overrides.train.augmentation_config.hue"]
    spec = (tmp_path / result.trials[0]["run_dir"] / "specs" / "train.txt").read_text(encoding="utf-8")
    assert f"  hue: {hue}\n" in spec  # an augmentation value (SSD's hue is whole degrees), searched like any key


@pytest.mark.usefixtures("emulated_tao")
def test_ctrl_c_leaves_the_running_trials_to_the_next_tune(emulated_config, tmp_path):
    config = _tuned(emulated_config, trials=2, pruner="none")
    runner = FakeRunner(hold=("train",))  # both trials train until they are stopped

    def press_ctrl_c_once_both_train():
        while runner.ran.count("train") < 2:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_once_both_train, daemon=True).start()
    with pytest.raises(Interrupted):
        run_tune(config, tune_dir=tmp_path / "tune", key=KEY, events=Quiet(), runner_factory=lambda c: runner,
                 jobs=2)
    folders = sorted(p.name for p in (tmp_path / "tune" / "trials").iterdir())

    runner.hold, runner.ran = (), []
    result = run_tune(config, tune_dir=tmp_path / "tune", key=KEY, events=Quiet(), runner_factory=lambda c: runner,
                      jobs=2)
    assert [t["state"] for t in result.trials] == ["complete", "complete"]  # the interrupted ones, not counted
    assert sorted(Path(t["run_dir"]).name for t in result.trials) == folders  # run again where they were
