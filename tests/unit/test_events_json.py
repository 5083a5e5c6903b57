"""JSON-lines run events and the progress state behind them (no Docker)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

from tlt_pipe.events_json import JsonEvents
from tlt_pipe.manifest import StageRecord
from tlt_pipe.progress import StageProgress, format_seconds, parse_timedelta


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def step(name: str = "train", reason: str = "has not run yet"):
    return SimpleNamespace(name=name, reason=reason, plan=SimpleNamespace(image="tao:5.0"),
                           argv=["ssd", "train", "-k", "***"])


def events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def keras_epoch(ev: JsonEvents, clock: Clock, epoch: int, total: int, loss: float) -> None:
    ev.line("train", f"Epoch {epoch}/{total}")
    ev.progress("train", f" 3/9 [=========>....................] - ETA: 4s - loss: {loss + 0.05:.4f}")
    ev.progress("train", f"\r 6/9 [===================>..........] - ETA: 2s - loss: {loss + 0.02:.4f}")
    clock.now += 0.3
    ev.line("train", f"9/9 [==============================] - 3s 300ms/step - loss: {loss:.4f}")


def test_progress_from_keras_lines_and_status_json():
    state = StageProgress("train", started=0.0)
    assert state.feed_line("Epoch 1/4", 0.0)
    assert state.feed_line("9/9 [==============================] - 3s 300ms/step - loss: 1.5000", 3.0)
    state.feed_line("Epoch 2/4", 10.0)
    assert state.eta_seconds == 30.0  # 10 s per epoch, epochs 2..4 left
    state.feed_line("              mAP   0.4321", 11.0)
    assert state.map == 0.4321
    entries = [{"status": "STARTED"},
               {"status": "RUNNING", "epoch": 2, "max_epoch": 4, "eta": "0:00:12.5",
                "graphical": {"loss": 1.2, "learning_rate": 5e-5, "mean average precision": 0.5}}]
    assert state.feed_status(entries)
    assert (state.epoch, state.max_epoch, state.loss, state.lr, state.map, state.eta_seconds) == (2, 4, 1.2, 5e-5, 0.5, 12.5)
    assert not state.feed_status(entries)  # nothing new
    state.feed_line("Epoch 3/4", 20.0)
    state.feed_line("9/9 [==============================] - 3s 300ms/step - loss: 0.9000", 23.0)
    late = entries + [{"epoch": 2, "max_epoch": 4, "eta": "0:00:09", "graphical": {"loss": 1.1, "learning_rate": 4e-5}}]
    state.feed_status(late)  # the console is ahead: the old epoch does not win
    assert (state.epoch, state.loss, state.lr, state.eta_seconds) == (3, 0.9, 4e-5, 9.0)


def test_progress_from_the_status_json_of_taos_pytorch_tasks():
    """RT-DETR's status.json: kpi train_loss, and val_mAP50 written as a string."""
    state = StageProgress("train", started=0.0)
    entries = [{"status": "STARTED", "message": "Starting Training Loop."},
               {"status": "RUNNING", "kpi": {"train_loss": 2.75}, "message": "Train metrics generated."},
               {"status": "RUNNING", "kpi": {"val_mAP": "0.21", "val_mAP50": "0.4375", "val_loss": 1.5}},
               {"status": "RUNNING", "epoch": 1, "max_epoch": 6, "eta": "0:00:50"}]
    assert state.feed_status(entries)
    assert (state.epoch, state.max_epoch, state.loss, state.map, state.eta_seconds) == (1, 6, 2.75, 0.4375, 50.0)
    state.feed_status(entries + [{"kpi": {"val_mAP50": "not a number"}}])
    assert state.map == 0.4375
    console = StageProgress("train", started=0.0)  # the console: Lightning counts epochs from 0
    assert console.feed_line("Epoch 0:  40%|####      | 4/10 [00:01<00:02]", 1.0)
    assert console.feed_line("\rEpoch 1: 100%|##########| 10/10 [train_loss=2.1]", 5.0) and console.epoch == 2
    assert console.feed_line("Validation mAP50 : 0.625", 6.0) and console.map == 0.625
    assert not console.feed_line("Validation mAP : 0.3", 7.0)  # mAP over IoU 0.5:0.95 is not the one shown


def test_timedelta_and_seconds_formats():
    assert parse_timedelta("1 day, 1:00:01.5") == 90001.5
    assert parse_timedelta("nonsense") is None
    assert [format_seconds(s) for s in (None, 5, 185, 3725)] == ["?", "5s", "3m05s", "1h02m"]


def test_events_are_json_lines_with_throttled_progress(tmp_path):
    out, clock = io.StringIO(), Clock()
    ev = JsonEvents(out, None, throttle=1.0, clock=clock)
    ev.stage_skipped(step("prepare", "up to date"))
    ev.stage_started(step(), tmp_path / "logs" / "train.log")
    for epoch in (1, 2):
        keras_epoch(ev, clock, epoch, 2, 1.0 / epoch)
    record = StageRecord(status="succeeded", exit_code=0, duration_s=4.2,
                         metrics={"mAP": 0.61, "validation_loss": float("nan")})
    ev.stage_finished("train", record)

    lines = events(out)
    kinds = [e["event"] for e in lines]
    assert kinds[:2] == ["stage_skipped", "stage_started"] and kinds[-2:] == ["metrics", "stage_finished"]
    assert lines[0] == {"event": "stage_skipped", "stage": "prepare", "reason": "up to date"}
    assert lines[1] == {"event": "stage_started", "stage": "train", "image": "tao:5.0",
                        "argv": ["ssd", "train", "-k", "***"], "log": "logs/train.log"}
    progress = [e for e in lines if e["event"] == "progress"]
    # Each epoch: its start and its end; the redraws in between fall inside the throttle window.
    assert [(p["epoch"], p["step"]) for p in progress] == [(1, None), (1, 9), (2, None), (2, 9)]
    assert progress[-1]["loss"] == 0.5 and progress[-1]["max_epoch"] == 2
    assert lines[-2] == {"event": "metrics", "stage": "train", "metrics": {"mAP": 0.61, "validation_loss": None}}
    assert lines[-1] == {"event": "stage_finished", "stage": "train", "status": "succeeded", "exit_code": 0,
                         "duration": 4.2, "error": None}


def test_status_json_is_read_live_from_the_results_dir(tmp_path):
    out, clock = io.StringIO(), Clock()
    ev = JsonEvents(out, None, throttle=1.0, clock=clock)
    ev.stage_started(step(), tmp_path / "logs" / "train.log")
    results = tmp_path / "train"
    results.mkdir()
    (results / "status.json").write_text(json.dumps(
        {"status": "RUNNING", "epoch": 1, "max_epoch": 3, "eta": "0:00:20",
         "graphical": {"loss": 2.0, "learning_rate": 0.001}}) + "\n")
    ev.line("train", "some container line")
    clock.now += 2
    ev.line("train", "another line")
    progress = [e for e in events(out) if e["event"] == "progress"]
    assert progress[-1]["epoch"] == 1 and progress[-1]["lr"] == 0.001 and progress[-1]["eta"] == 20.0


def test_human_events_are_forwarded(tmp_path):
    seen = []

    class Human:
        def __getattr__(self, name):
            return lambda *args: seen.append(name)

    ev = JsonEvents(io.StringIO(), Human())
    ev.plan(Path("."), [])
    ev.stage_started(step(), tmp_path / "logs" / "train.log")
    ev.line("train", "x")
    ev.progress("train", "y")
    ev.stage_finished("train", StageRecord(status="failed", exit_code=1))
    assert seen == ["plan", "stage_started", "line", "progress", "stage_finished"]
