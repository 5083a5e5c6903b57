"""How many stages run side by side, on which GPUs, and which are ready."""

from __future__ import annotations

from tlt_pipe.config import RunnerConfig
from tlt_pipe.schedule import Slots, ready, slots_for

UPSTREAM = {"train": (), "evaluate": ("train",), "prune": ("train",), "retrain": ("train", "prune"),
            "export": ("train", "prune", "retrain"), "inference": ("train", "prune", "retrain")}
ORDER = list(UPSTREAM)


def test_by_default_one_stage_at_a_time_unless_gpus_are_listed():
    assert slots_for(RunnerConfig()) == Slots(1)
    assert slots_for(RunnerConfig(gpus=[3])) == Slots(1)  # one GPU: nothing to share out
    assert slots_for(RunnerConfig(gpus=[0, 2])) == Slots(2, (0, 2))
    assert slots_for(RunnerConfig(gpus=[0, 2], jobs=1)) == Slots(1, (0, 2))
    assert slots_for(RunnerConfig(gpus="none", jobs=3)) == Slots(3)


def test_slurm_queues_whatever_is_ready_and_gets_its_gpus_from_the_scheduler():
    assert slots_for(RunnerConfig(kind="slurm")) == Slots(None)
    assert slots_for(RunnerConfig(kind="slurm", gpus=[0, 1], jobs=2)) == Slots(2)


def test_a_stage_is_ready_once_what_it_depends_on_has_finished():
    assert ready(ORDER, UPSTREAM, finished=set(), started=set()) == ["train"]
    assert ready(ORDER, UPSTREAM, finished={"train"}, started={"train"}) == ["evaluate", "prune"]
    assert ready(ORDER, UPSTREAM, finished={"train", "prune", "retrain"},
                 started={"train", "evaluate", "prune", "retrain"}) == ["export", "inference"]
    # Stages outside the selection (run earlier) are not waited for.
    assert ready(["retrain", "export"], UPSTREAM, finished=set(), started=set()) == ["retrain"]
