"""The live terminal display, drawn through rich's own console into a string."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from tlt_pipe.cli import _events
from tlt_pipe.console import ConsoleEvents, make_console
from tlt_pipe.live import LiveEvents, render_stage
from tlt_pipe.manifest import StageRecord
from tlt_pipe.progress import StageProgress


def terminal(width: int = 120) -> Console:
    return Console(force_terminal=True, file=io.StringIO(), width=width, color_system="standard", record=True)


def test_panel_shows_epoch_bar_numbers_and_the_last_lines():
    state = StageProgress("train", started=0.0, epoch=3, max_epoch=6, step=4, steps=8, loss=1.23456, lr=5e-05,
                          map=0.6123, eta_seconds=125)
    console = terminal()
    console.print(render_stage(state, ["line one", "line [two]"], now=75.0, width=20))
    text = console.export_text()
    head, *tail = text.splitlines()
    assert head.startswith("train epoch 3/6")
    assert "━" in head  # the bar
    for part in ("loss 1.2346", "lr 5e-05", "mAP 0.6123", "elapsed 1m15s", "ETA 2m05s"):
        assert part in head
    assert tail == ["line one", "line [two]"]  # container text is not markup


def test_panel_before_the_first_epoch():
    console = terminal()
    console.print(render_stage(StageProgress("export", started=0.0), [], now=3.0))
    assert console.export_text().strip() == "export elapsed 3s"


def step(name="train"):
    return SimpleNamespace(name=name, reason="has not run yet", plan=SimpleNamespace(image="tao:5.0"),
                           argv=["ssd", "train"])


def test_live_events_draw_and_clear_the_panel(tmp_path):
    now = [0.0]
    console = terminal()
    events = LiveEvents(console, clock=lambda: now[0], refresh_per_second=20)
    events.stage_started(step(), tmp_path / "logs" / "train.log")
    for epoch in (1, 2):
        now[0] += 5
        events.line("train", f"Epoch {epoch}/2")
        events.progress("train", "4/8 [==============>...............] - ETA: 2s - loss: 0.9000")
        events.line("train", "8/8 [==============================] - 4s 500ms/step - loss: 0.8000")
    events.line("train", "              mAP   0.5000")
    events.stage_finished("train", StageRecord(status="succeeded", duration_s=10.0, metrics={"mAP": 0.5}))
    out = console.file.getvalue()
    assert "\x1b[" in out  # a live display: cursor movement and colours
    assert "epoch 2/2" in out and "loss 0.8000" in out
    assert "ok train in 10.0s (mAP 0.5000)" in console.export_text()


def test_lines_of_other_stages_print_plainly(tmp_path):
    console = terminal()
    events = LiveEvents(console)
    events.line("images", "abc: Pull complete")
    assert "images| abc: Pull complete" in console.export_text()


def test_the_cli_picks_live_only_for_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert isinstance(_events(terminal(), as_json=False, quiet=False), LiveEvents)
    assert isinstance(_events(make_console(plain=True), as_json=False, quiet=False), ConsoleEvents)
    monkeypatch.setenv("NO_COLOR", "1")
    assert isinstance(_events(make_console(), as_json=False, quiet=False), ConsoleEvents)


def test_stages_side_by_side_get_a_panel_each(tmp_path):
    console = terminal()
    events = LiveEvents(console, refresh_per_second=20)
    events.stage_started(step("evaluate"), tmp_path / "logs" / "evaluate.log")
    events.stage_started(step("prune"), tmp_path / "logs" / "prune.log")
    events.line("evaluate", "evaluating 12 images")
    events.line("prune", "pruning with threshold 0.1")
    both = events._render()
    console.print(both)
    drawn = console.export_text()
    assert "evaluating 12 images" in drawn and "pruning with threshold 0.1" in drawn
    events.stage_finished("evaluate", StageRecord(status="succeeded", duration_s=1.0))
    console.print(events._render())
    after = console.export_text()
    assert "pruning with threshold 0.1" in after and "evaluating 12 images" not in after
    assert events._live is not None  # prune still runs
    events.stage_finished("prune", StageRecord(status="succeeded", duration_s=2.0))
    assert events._live is None
