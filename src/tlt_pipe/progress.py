"""Where a running stage is: epoch x/y, loss, lr, last mAP and time left.

Fed with the container's console lines (Keras ``Epoch 3/80`` and step lines, the AP block's
``mAP`` line, Lightning's ``Epoch 2: 100%|`` bar and ``Validation mAP50 : x`` of TAO's PyTorch tasks,
carriage-return redraws included) and with TAO's ``status.json`` entries (TAO 4/5
write one per epoch with ``epoch``, ``max_epoch``, ``eta`` and ``graphical`` {loss, learning_rate,
mean average precision}; its PyTorch tasks ``kpi`` {train_loss, val_mAP50}). Pure: the caller passes the clock; nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tlt_pipe.parsers import parse_keras_line, parse_pytorch_ssd_line, strip_ansi

_MAP_LINE = re.compile(r"^\s*mAP\s+([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_DNV2_MAP = re.compile(r"Mean average_precision \(in %\):\s*([-+]?\d+(?:\.\d+)?)")
# TAO's PyTorch tasks: Lightning's progress bar (epochs from 0) and the validation they log.
_LIGHTNING_EPOCH = re.compile(r"^Epoch (\d+):\s+\d+%\|")
_PYT_MAP = re.compile(r"^Validation mAP50 : ([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_TIMEDELTA = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timedelta(text: Any) -> float | None:
    """Seconds in Python's ``str(timedelta)`` ("0:01:02.5", "1 day, 2:00:00"); None otherwise."""
    match = _TIMEDELTA.match(str(text).strip())
    if match is None:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass
class StageProgress:
    """The live state of one stage. ``started`` and every ``now`` are the same monotonic clock."""

    stage: str
    started: float
    epoch: int | None = None
    max_epoch: int | None = None
    step: int | None = None
    steps: int | None = None
    loss: float | None = None
    lr: float | None = None
    map: float | None = None
    eta_seconds: float | None = None
    _epoch_started: dict[int, float] = field(default_factory=dict, repr=False)
    _status_seen: int = field(default=0, repr=False)

    def feed_line(self, text: str, now: float) -> bool:
        """One console line (or redraw); True when something shown changed."""
        before = self.snapshot()
        parsed = parse_keras_line(text)
        if parsed is not None:
            if parsed.kind == "epoch":
                self.epoch, self.max_epoch = parsed.epoch, parsed.max_epoch
                self.step = None
                if parsed.epoch is not None:
                    self._epoch_started.setdefault(parsed.epoch, now)
                self._estimate(now)
            elif parsed.kind == "step":
                self.step, self.steps = parsed.step, parsed.steps
                if parsed.loss is not None:
                    self.loss = parsed.loss
                lr = parsed.metrics.get("lr")
                if lr is not None:
                    self.lr = lr
        else:
            clean = strip_ansi(text).rsplit("\r", 1)[-1]
            match = _MAP_LINE.match(clean)
            ssd = parse_pytorch_ssd_line(clean)
            if ssd is not None:  # pytorch-ssd counts epochs from 0
                self.epoch = ssd.epoch + 1
                self._epoch_started.setdefault(self.epoch, now)
                if ssd.step is not None:
                    self.step, self.steps, self.loss = ssd.step, ssd.steps, ssd.loss
                self._estimate(now)
            elif match:
                self.map = float(match.group(1))
            elif lightning := _LIGHTNING_EPOCH.match(clean):
                self.epoch = int(lightning.group(1)) + 1
                self._epoch_started.setdefault(self.epoch, now)
                self._estimate(now)
            elif pyt_map := _PYT_MAP.match(clean):
                self.map = float(pyt_map.group(1))
            else:
                match = _DNV2_MAP.search(clean)
                if match:
                    self.map = round(float(match.group(1)) / 100.0, 6)
        return self.snapshot() != before

    def feed_status(self, entries: Iterable[Mapping[str, Any]]) -> bool:
        """All of status.json so far (it is appended to): only entries not seen before count."""
        before = self.snapshot()
        entries = list(entries)
        for entry in entries[self._status_seen:]:
            # status.json is read now and then, so the console is usually ahead of it: an older
            # epoch's entry still gives the learning rate and the time left, not the loss or mAP.
            behind = isinstance(entry.get("epoch"), int) and self.epoch is not None and entry["epoch"] < self.epoch
            if isinstance(entry.get("epoch"), int) and not behind:
                self.epoch = entry["epoch"]
            if isinstance(entry.get("max_epoch"), int):
                self.max_epoch = entry["max_epoch"]
            eta = parse_timedelta(entry["eta"]) if "eta" in entry else None
            if eta is not None:
                self.eta_seconds = eta
            graphical = entry.get("graphical") if isinstance(entry.get("graphical"), Mapping) else {}
            kpi = entry.get("kpi") if isinstance(entry.get("kpi"), Mapping) else {}
            for source in (graphical, kpi):
                self.lr = _number(source.get("learning_rate"), self.lr)
                if not behind:
                    self.loss = _number(source.get("loss"), self.loss)
                    self.map = _number(source.get("mean average precision"), self.map)
            if not behind:  # TAO's PyTorch tasks: their own names, the mAP written as a string
                self.loss = _number(kpi.get("train_loss"), self.loss)
                self.map = _number(_float(kpi.get("val_mAP50")), self.map)
        self._status_seen = len(entries)
        return self.snapshot() != before

    def _estimate(self, now: float) -> None:
        """Time left from the pace of the epochs seen so far (status.json's eta overrides it)."""
        if not self.epoch or not self.max_epoch or len(self._epoch_started) < 2:
            return
        first = min(self._epoch_started)
        done = self.epoch - first
        if done > 0:
            per_epoch = (now - self._epoch_started[first]) / done
            self.eta_seconds = round(per_epoch * (self.max_epoch - self.epoch + 1), 1)

    def elapsed(self, now: float) -> float:
        return max(0.0, now - self.started)

    def snapshot(self) -> dict[str, Any]:
        """What a progress event carries (step/steps: the Keras step within the epoch)."""
        return {"stage": self.stage, "epoch": self.epoch, "max_epoch": self.max_epoch, "step": self.step,
                "steps": self.steps, "loss": self.loss, "lr": self.lr, "map": self.map, "eta": self.eta_seconds}


def _float(value: Any) -> Any:
    """A number written as a string, as a float (anything else as it is)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _number(value: Any, default: float | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def format_seconds(seconds: float | None) -> str:
    """12s, 3m05s, 1h02m."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
