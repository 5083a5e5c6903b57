"""Machine-readable run events: one JSON object per line on stdout, for CI jobs and scripts.

    {"event": "stage_started", "stage": "train", "image": "...", "argv": [...], "log": "logs/train.log"}
    {"event": "progress", "stage": "train", "epoch": 3, "max_epoch": 80, "loss": 1.72, "lr": 5e-05, "map": null, "eta": 812.0}
    {"event": "metrics", "stage": "train", "metrics": {...}}
    {"event": "stage_finished", "stage": "train", "status": "succeeded", "exit_code": 0, "duration": 981.2}
    {"event": "stage_skipped", "stage": "prepare", "reason": "up to date ..."}

Nothing else is written to that stream: the human-readable events go to ``human`` (a console on
stderr). argv is already redacted by the pipeline; progress events are throttled (one per
``throttle`` seconds per stage, and one whenever the epoch changes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tlt_pipe.manifest import StageRecord
from tlt_pipe.parsers import parse_status_json
from tlt_pipe.progress import StageProgress
from tlt_pipe.summary import json_safe


class StatusWatcher:
    """Reads a results directory's status.json at most every ``interval`` seconds."""

    def __init__(self, path: Path, interval: float = 1.0):
        self.path = path
        self.interval = interval
        self._last: float | None = None
        self._size = -1

    def poll(self, now: float, *, force: bool = False) -> list[dict[str, Any]] | None:
        """All entries when the file changed since the last look; None otherwise."""
        if not force and self._last is not None and now - self._last < self.interval:
            return None
        self._last = now
        try:
            size = self.path.stat().st_size
            if size == self._size:
                return None
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        self._size = size
        return parse_status_json(text)


def status_path(log_path: Path) -> Path:
    """<run>/<stage>/status.json for <run>/logs/<stage>.log (train -> train/, retrain -> retrain/)."""
    return log_path.parent.parent / log_path.stem / "status.json"


class JsonEvents:
    def __init__(self, out: IO[str], human: Any = None, *, throttle: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.human = human
        self.throttle = throttle
        self.clock = clock
        self._progress: dict[str, StageProgress] = {}
        self._watchers: dict[str, StatusWatcher] = {}
        self._sent: dict[str, tuple[float, dict[str, Any]]] = {}

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}, default=str, allow_nan=False) + "\n")
        self.out.flush()

    # Events protocol ------------------------------------------------------------------------
    def plan(self, run_dir: Path, steps) -> None:
        self._call("plan", run_dir, steps)

    def stage_skipped(self, step) -> None:
        self._call("stage_skipped", step)
        self.emit("stage_skipped", stage=step.name, reason=step.reason)

    def stage_started(self, step, log_path: Path) -> None:
        self._call("stage_started", step, log_path)
        now = self.clock()
        self._progress[step.name] = StageProgress(step.name, started=now)
        self._watchers[step.name] = StatusWatcher(status_path(log_path), self.throttle)
        log = log_path.relative_to(log_path.parent.parent) if log_path.parent.name == "logs" else log_path
        self.emit("stage_started", stage=step.name, image=step.plan.image, argv=list(step.argv), log=str(log))

    def line(self, stage: str, text: str) -> None:
        self._call("line", stage, text)
        self._feed(stage, text)

    def progress(self, stage: str, text: str) -> None:
        self._call("progress", stage, text)
        self._feed(stage, text)

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        self._call("stage_finished", stage, record)
        state = self._progress.pop(stage, None)
        watcher = self._watchers.pop(stage, None)
        if state is not None and watcher is not None:
            entries = watcher.poll(self.clock(), force=True)
            if entries:
                state.feed_status(entries)
            self._maybe_send(state, force=True)
        self._sent.pop(stage, None)
        if record.metrics:
            self.emit("metrics", stage=stage, metrics=json_safe(record.metrics))
        self.emit("stage_finished", stage=stage, status=record.status, exit_code=record.exit_code,
                  duration=record.duration_s, error=record.error)

    # -----------------------------------------------------------------------------------------
    def _call(self, name: str, *args: Any) -> None:
        if self.human is not None:
            getattr(self.human, name)(*args)

    def _feed(self, stage: str, text: str) -> None:
        state = self._progress.get(stage)
        if state is None:
            return
        now = self.clock()
        state.feed_line(text, now)
        watcher = self._watchers.get(stage)
        entries = watcher.poll(now) if watcher is not None else None
        if entries:
            state.feed_status(entries)
        self._maybe_send(state)

    def _maybe_send(self, state: StageProgress, *, force: bool = False) -> None:
        snap = state.snapshot()
        if snap["epoch"] is None:
            return
        now = self.clock()
        last = self._sent.get(state.stage)
        if last is not None:
            sent_at, sent = last
            if sent == snap:
                return
            if not force and _milestone(sent) == _milestone(snap) and now - sent_at < self.throttle:
                return
        self._sent[state.stage] = (now, snap)
        self.emit("progress", **json_safe(snap))


def _milestone(snap: dict[str, Any]) -> tuple[Any, bool]:
    """An epoch starting or ending is always reported; anything between waits for the throttle."""
    return snap["epoch"], bool(snap["steps"]) and snap["step"] == snap["steps"]

