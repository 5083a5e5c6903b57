"""The live display of a run in a terminal: one panel per running stage with its epoch and a bar,
loss, lr, last mAP, elapsed time and time left, and the last lines of container output below.

Used only when stdout is a terminal (no --plain, no NO_COLOR); everything else about a run (the
plan, skips, the one line per finished stage) prints as ConsoleEvents prints it. The full output
is in logs/<stage>.log whatever is shown here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tlt_pipe.console import ConsoleEvents
from tlt_pipe.events_json import StatusWatcher, status_path
from tlt_pipe.manifest import StageRecord
from tlt_pipe.progress import StageProgress, format_seconds


def render_stage(state: StageProgress, tail: Iterable[str], now: float, *, width: int = 30) -> RenderableType:
    """The panel of one running stage. Pure: the same state, tail and time draw the same thing."""
    head = Table.grid(padding=(0, 1))
    head.add_row(*_head_cells(state, now, width))
    lines = [Text(line, style="dim", overflow="ellipsis", no_wrap=True) for line in tail]
    return Group(head, *lines)


def _head_cells(state: StageProgress, now: float, width: int) -> list[RenderableType]:
    cells: list[RenderableType] = [Text(state.stage, style="bold cyan")]
    if state.epoch is not None and state.max_epoch:
        done = state.epoch - 1 + (state.step / state.steps if state.step and state.steps else 0.0)
        cells.append(Text(f"epoch {state.epoch}/{state.max_epoch}"))
        cells.append(ProgressBar(total=float(state.max_epoch), completed=min(done, state.max_epoch), width=width))
    facts = []
    if state.loss is not None:
        facts.append(f"loss {state.loss:.4f}")
    if state.lr is not None:
        facts.append(f"lr {state.lr:.3g}")
    if state.map is not None:
        facts.append(f"mAP {state.map:.4f}")
    facts.append(f"elapsed {format_seconds(state.elapsed(now))}")
    if state.eta_seconds is not None:
        facts.append(f"ETA {format_seconds(state.eta_seconds)}")
    cells.append(Text("  ".join(facts)))
    return cells


@dataclass
class _Panel:
    """What is shown of one running stage."""

    state: StageProgress
    watcher: StatusWatcher
    tail: deque[str]
    redraw: str | None = None


class LiveEvents:
    """The Events of a run shown live: one panel per running stage (several when stages run side by side).
    ``tail``: how many lines of container output to keep on screen per stage."""

    def __init__(self, console: Console, *, quiet_output: bool = False, tail: int = 6,
                 clock: Callable[[], float] = time.monotonic, refresh_per_second: float = 4):
        self.console = console
        self.quiet_output = quiet_output
        self.clock = clock
        self.refresh_per_second = refresh_per_second
        self._lines = ConsoleEvents(console, quiet_output=quiet_output)
        self._tail_length = 0 if quiet_output else tail
        self._panels: dict[str, _Panel] = {}  # running stages, in the order they started
        self._live: Live | None = None
        self._lock = threading.RLock()  # the display refreshes from a thread of its own

    def plan(self, run_dir: Path, steps) -> None:
        self._lines.plan(run_dir, steps)

    def stage_skipped(self, step) -> None:
        self._lines.stage_skipped(step)

    def stage_started(self, step, log_path: Path) -> None:
        self._lines.stage_started(step, log_path)
        with self._lock:
            self._panels[step.name] = _Panel(StageProgress(step.name, started=self.clock()),
                                             StatusWatcher(status_path(log_path)),
                                             deque(maxlen=self._tail_length))
        if self._live is None:
            self._live = Live(get_renderable=self._render, console=self.console,
                              refresh_per_second=self.refresh_per_second, transient=True, redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start()

    def line(self, stage: str, text: str) -> None:
        with self._lock:
            panel = self._panels.get(stage)
            if panel is not None:
                panel.redraw = None
                panel.tail.append(text)
        if panel is None or self._live is None:
            self._lines.line(stage, text)
            return
        self._update(panel, text)

    def progress(self, stage: str, text: str) -> None:
        with self._lock:
            panel = self._panels.get(stage)
            if panel is not None:
                panel.redraw = text
        if panel is not None:
            self._update(panel, text)

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        with self._lock:
            self._panels.pop(stage, None)
            last = not self._panels
        if last:
            self._stop()
        self._lines.stage_finished(stage, record)

    # ----------------------------------------------------------------------------------------
    def _update(self, panel: _Panel, text: str) -> None:
        now = self.clock()
        with self._lock:
            epoch = panel.state.epoch
            panel.state.feed_line(text, now)
            entries = panel.watcher.poll(now)
            if entries:
                panel.state.feed_status(entries)
            changed = panel.state.epoch != epoch
        if self._live is not None and changed:
            self._live.refresh()

    def _render(self) -> RenderableType:
        with self._lock:
            now = self.clock()
            drawn = []
            for panel in self._panels.values():
                tail = list(panel.tail)
                if panel.redraw and not self.quiet_output:
                    tail = (tail[1:] if len(tail) == panel.tail.maxlen else tail) + [panel.redraw]
                drawn.append(render_stage(panel.state, tail, now))
            return Group(*drawn) if drawn else Text("")

    def _stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()
