"""TAO output -> numbers.

Pure functions over text the TAO tasks write: the training CSV, the AP blocks printed by
training and evaluate, DetectNet_v2's evaluation table, ``status.json`` (JSON Lines), the
Keras progress lines and the one-line reports of prune, export and kmeans. Nothing here
reads files or talks to Docker: callers pass the text in, so every function can be fed a
file that is still being written (a truncated last line is expected, not an error).

Console text may carry ANSI colour codes and carriage returns (Keras redraws its progress
bar with ``\\r``); the line-oriented parsers strip both.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "APResult",
    "EpochRow",
    "KerasProgress",
    "best_epoch",
    "checkpoint_epochs",
    "clean_lines",
    "last_status",
    "merge_history",
    "parse_ap_block",
    "parse_detectnet_eval",
    "parse_execution_status",
    "parse_exported_path",
    "parse_keras_line",
    "parse_kmeans_anchors",
    "parse_prune_ratio",
    "parse_pytorch_ssd_checkpoint",
    "parse_pytorch_ssd_eval",
    "parse_pytorch_ssd_line",
    "parse_status_json",
    "parse_training_csv",
    "parse_validation_loss",
    "strip_ansi",
]


# ---------------------------------------------------------------------------------------
# Console text hygiene

# CSI sequences (colours, cursor moves, erase line) and the two-byte ESC sequences.
_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor movement, OSC titles)."""
    return _ANSI_RE.sub("", text)


def _last_segment(line: str) -> str:
    """What a terminal shows for a line redrawn with carriage returns: its last non-empty part."""
    if "\r" not in line:
        return line
    for segment in reversed(line.split("\r")):
        if segment.strip():
            return segment
    return ""


def clean_lines(text: str) -> list[str]:
    """Split console text into lines without ANSI codes, keeping only the last ``\\r`` redraw."""
    text = strip_ansi(text)
    return [_last_segment(line) for line in text.split("\n")]


def _to_float(token: str) -> float | None:
    """A number as TAO prints it; None for nan / empty / NA and for anything unparsable."""
    token = token.strip()
    if not token or token.lower() in _MISSING:
        return None
    try:
        value = float(token)
    except ValueError:
        return None
    return None if math.isnan(value) else value


_MISSING = frozenset({"nan", "-nan", "na", "n/a", "none", "null"})

_FLOAT = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(strip_ansi(text)):
        pass
    return last


# ---------------------------------------------------------------------------------------
# Training CSV


@dataclass(frozen=True)
class EpochRow:
    """One row of TAO's training CSV.

    ``epoch`` is 1-based as TAO writes it. Metrics are None where the CSV has ``nan`` or an
    empty cell (epochs without validation have no mAP, AP or validation loss).
    ``ap`` maps the class name (the ``AP_`` column prefix removed) to its AP, a fraction.
    """

    epoch: int
    loss: float | None = None
    lr: float | None = None
    map: float | None = None
    validation_loss: float | None = None
    ap: dict[str, float | None] = field(default_factory=dict)


_KNOWN_COLUMNS = {"loss": "loss", "lr": "lr", "map": "map", "validation_loss": "validation_loss"}


def _parse_header(fields: list[str], lineno: int) -> list[str]:
    names = [name.strip().lstrip("\ufeff").strip() for name in fields]
    if "epoch" not in names:
        raise ValueError(f"line {lineno}: training CSV header has no 'epoch' column: {','.join(fields)!r}")
    if any(not name for name in names):
        raise ValueError(f"line {lineno}: training CSV header has an empty column name: {','.join(fields)!r}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"line {lineno}: training CSV header repeats column {name!r}")
        seen.add(name)
    return names


def _parse_row(names: list[str], values: list[str]) -> EpochRow:
    epoch_text = values[names.index("epoch")].strip()
    epoch_value = float(epoch_text)  # ValueError on garbage, caught by the caller
    if not epoch_value.is_integer():
        raise ValueError(f"epoch {epoch_text!r} is not an integer")
    metrics: dict[str, float | None] = {}
    ap: dict[str, float | None] = {}
    for name, value in zip(names, values):
        if name == "epoch":
            continue
        if name.startswith("AP_"):
            ap[name[3:]] = _to_float(value)
        else:
            key = "map" if name == "mAP" else name
            if key in _KNOWN_COLUMNS:
                stripped = value.strip()
                number = _to_float(stripped)
                if number is None and stripped and stripped.lower() not in _MISSING:
                    raise ValueError(f"column {name!r} is not a number: {stripped!r}")
                metrics[key] = number
    return EpochRow(epoch=int(epoch_value), ap=ap, **metrics)


def parse_training_csv(text: str) -> list[EpochRow]:
    """Parse TAO's ``<prefix>_training_log_<arch>.csv``.

    The header is ``epoch,AP_<class>...,loss,lr,mAP,validation_loss`` (columns are matched
    by name, in any order; unknown columns are ignored, missing metric columns give None).
    Blank lines are skipped. The last line may be incomplete because the file is still being
    written: when it has no line terminator and is short or unparsable it is dropped.

    Raises ValueError naming the line on a malformed header (no ``epoch`` column, an empty
    or repeated column name) or on a malformed row that is not the last, unterminated one.
    """
    lines = text.splitlines(keepends=True)
    names: list[str] | None = None
    rows: list[EpochRow] = []
    for lineno, raw in enumerate(lines, start=1):
        terminated = raw.endswith(("\n", "\r"))
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        fields = next(csv.reader([line]))
        if names is None:
            if not terminated:
                # Only part of the header has been written so far.
                return []
            names = _parse_header(fields, lineno)
            continue
        partial = not terminated and lineno == len(lines)
        if len(fields) != len(names):
            if partial and len(fields) < len(names):
                break
            raise ValueError(f"line {lineno}: expected {len(names)} fields, found {len(fields)}")
        try:
            rows.append(_parse_row(names, fields))
        except ValueError as exc:
            if partial:
                break
            raise ValueError(f"line {lineno}: {exc}") from None
    return rows


def merge_history(old: list[EpochRow], new: list[EpochRow]) -> list[EpochRow]:
    """Join the rows of an earlier training attempt with the CSV of a resumed one.

    A resumed run overwrites the CSV, so it only holds the epochs it ran itself. Keeps the
    rows of ``old`` before the first epoch of ``new``, then all of ``new``.
    """
    if not new:
        return list(old)
    first = min(row.epoch for row in new)
    return [row for row in old if row.epoch < first] + list(new)


def best_epoch(rows: Iterable[EpochRow], checkpoint_epochs: Iterable[int]) -> int | None:
    """The checkpointed epoch to keep: the one with the highest validation mAP.

    Only epochs that have a checkpoint compete; on equal mAP the later epoch wins. When no
    checkpointed epoch was validated, the last checkpoint is returned; with no checkpoints,
    None. When ``rows`` holds an epoch twice the later row counts.
    """
    epochs = set(checkpoint_epochs)
    if not epochs:
        return None
    map_by_epoch: dict[int, float | None] = {}
    for row in rows:
        map_by_epoch[row.epoch] = row.map
    scored = [(m, e) for e in epochs if (m := map_by_epoch.get(e)) is not None and not math.isnan(m)]
    if not scored:
        return max(epochs)
    return max(scored)[1]


# ---------------------------------------------------------------------------------------
# Checkpoint file names

_KERAS_CKPT_RE = re.compile(r"^(?P<prefix>.+)_epoch_(?P<epoch>\d+)\.(?P<ext>[^./\\]+)$")
_DNV2_CKPT_RE = re.compile(r"^(?P<prefix>.+)\.epoch-(?P<epoch>\d+)\.(?P<ext>ckzip)$")


def checkpoint_epochs(
    filenames: Iterable[str], ext: str, *, prefix_pattern: str | None = None
) -> dict[int, str]:
    """Map epoch -> file name for the checkpoints among ``filenames``.

    Recognises ``<prefix>_epoch_<NNN>.<ext>`` (SSD, DSSD, RetinaNet, YOLO:
    ``ssd_resnet18_epoch_080.hdf5``) and DetectNet_v2's ``<prefix>.epoch-<N>.ckzip``
    (``model.epoch-12.ckzip``). ``ext`` is the extension without the dot (``tlt``, ``hdf5``,
    ``ckzip``); matching is case-sensitive, as TAO's own resume logic is. When given,
    ``prefix_pattern`` is a regular expression that must match the whole prefix (for
    example ``ssd_resnet18``). Names may be paths: the base name is matched and the name
    is returned as given. Other files are ignored.

    Raises ValueError when two files claim the same epoch (two model prefixes in one
    directory: pass ``prefix_pattern``).
    """
    ext = ext.lstrip(".")
    prefix_re = re.compile(prefix_pattern) if prefix_pattern is not None else None
    found: dict[int, str] = {}
    for name in filenames:
        base = re.split(r"[/\\]", name)[-1]
        match = _DNV2_CKPT_RE.match(base) or _KERAS_CKPT_RE.match(base)
        if match is None or match["ext"] != ext:
            continue
        if prefix_re is not None and prefix_re.fullmatch(match["prefix"]) is None:
            continue
        epoch = int(match["epoch"])
        if epoch in found and found[epoch] != name:
            raise ValueError(f"two checkpoints for epoch {epoch}: {found[epoch]} and {name}")
        found[epoch] = name
    return dict(sorted(found.items()))


# ---------------------------------------------------------------------------------------
# AP blocks


@dataclass(frozen=True)
class APResult:
    """Per-class average precision and their mean.

    From ``parse_ap_block`` the values are fractions (0.7321), exactly as TAO printed them;
    from ``parse_detectnet_eval`` they are percentages (73.21), as DetectNet_v2 prints them.
    """

    ap: dict[str, float]
    map: float


_STARS_RE = re.compile(r"^\s*\*{10,}\s*$")


def _ap_line(line: str) -> tuple[str | None, float] | None:
    """Parse ``"{:<14}{:<6}{}".format(cls, "AP", ap)`` -> (cls, ap), or the mAP line -> (None, map).

    A class name longer than 14 characters is not padded, so it runs straight into ``AP``.
    """
    parts = line.rstrip().rsplit(None, 1)
    if len(parts) != 2:
        return None
    head, value_text = parts
    try:
        value = float(value_text)
    except ValueError:
        return None
    head = head.rstrip()
    if head.strip() == "mAP":
        return None, value
    if not head.endswith("AP"):
        return None
    name = head[:-2].strip()
    if not name or any(ch.isspace() for ch in name):
        return None
    return name, value


def parse_ap_block(text: str) -> APResult | None:
    """The last complete AP block printed by training (on validation epochs) or evaluate.

    The block is a line of at least 10 ``*``, one ``<class> AP <value>`` line per class, the
    ``mAP <value>`` line and another ``*`` line. Values are returned as printed (fractions).
    Returns None when the text holds no complete block.
    """
    last: APResult | None = None
    ap: dict[str, float] | None = None  # inside a block when not None
    mean: float | None = None
    for line in clean_lines(text):
        if _STARS_RE.match(line):
            if ap is not None and mean is not None:
                last = APResult(ap=ap, map=mean)
                ap, mean = None, None
            else:
                ap, mean = {}, None
            continue
        if ap is None:
            continue
        if not line.strip():
            continue
        parsed = _ap_line(line)
        if parsed is None or mean is not None:
            # Not a block after all (or a class line after the mAP line): wait for the next stars.
            ap, mean = None, None
            continue
        name, value = parsed
        if name is None:
            mean = value
        else:
            ap[name] = value
    return last


_DNV2_MEAN_RE = re.compile(r"Mean average_precision \(in %\):\s*(" + _FLOAT + r")")
_DNV2_HEADER_RE = re.compile(r"class name\W+average precision \(in %\)", re.IGNORECASE)
_SEPARATOR_RE = re.compile(r"^[\s\-=+|:]*$")


def _detectnet_table(lines: list[str], start: int) -> dict[str, float]:
    """Rows of the ``class name | average precision (in %)`` table whose header is at ``start``."""
    ap: dict[str, float] = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            if ap:
                break
            continue
        if _SEPARATOR_RE.match(line):
            continue
        cells = [cell for cell in re.split(r"\s*\|\s*|\s+", line.strip()) if cell]
        if len(cells) != 2:
            break
        value = _to_float(cells[1])
        if value is None:
            break
        ap[cells[0]] = value
    return ap


def parse_detectnet_eval(text: str) -> APResult | None:
    """DetectNet_v2's evaluation: ``Mean average_precision (in %): <x>`` and its class table.

    Values are PERCENTAGES, as printed (67.1234 means 0.671234), unlike ``parse_ap_block``.
    Uses the last mean line and the table that follows it (or, failing that, the table just
    before it). The table is read tolerantly: separator lines of ``-``/``=``/``+``/``|`` are
    skipped and cells may be separated by spaces or pipes. None when no mean line is found.
    """
    lines = clean_lines(text)
    mean_index = None
    mean = None
    previous_mean = -1
    for index, line in enumerate(lines):
        match = _DNV2_MEAN_RE.search(line)
        if match:
            previous_mean = mean_index if mean_index is not None else -1
            mean_index, mean = index, float(match.group(1))
    if mean_index is None or mean is None:
        return None
    headers = [i for i, line in enumerate(lines) if _DNV2_HEADER_RE.search(line)]
    after = [i for i in headers if i > mean_index]
    before = [i for i in headers if previous_mean < i < mean_index]
    if after:
        ap = _detectnet_table(lines, after[0])
    elif before:
        ap = _detectnet_table(lines, before[-1])
    else:
        ap = {}
    return APResult(ap=ap, map=mean)


# ---------------------------------------------------------------------------------------
# One-line reports

_VALIDATION_LOSS_RE = re.compile(r"Validation (?:loss|cost):\s*(" + _FLOAT + r")")
_PRUNE_RATIO_RE = re.compile(r"Pruning ratio \(pruned model / original model\):\s*(" + _FLOAT + r")")
_EXEC_STATUS_RE = re.compile(r"Execution status:\s*(PASS|FAIL)\b")
_EXPORTED_RE = re.compile(r"Saving exported model to\s+(\S.*?)\s*$", re.MULTILINE)
_TOTAL_PARAMS_RE = re.compile(r"^\s*Total params:\s*([\d,]+)\s*$", re.MULTILINE)


def parse_validation_loss(text: str) -> float | None:
    """The last ``Validation loss: <x>`` (DetectNet_v2: ``Validation cost: <x>``); None if absent or nan."""
    match = _last_match(_VALIDATION_LOSS_RE, text)
    return _to_float(match.group(1)) if match else None


def parse_prune_ratio(text: str) -> float | None:
    """The last ``Pruning ratio (pruned model / original model): <x>`` printed by prune."""
    match = _last_match(_PRUNE_RATIO_RE, text)
    return _to_float(match.group(1)) if match else None


def parse_total_params(text: str) -> int | None:
    """The parameter count of the last ``Total params: 13,187,456`` (the end of Keras's model summary)."""
    match = _last_match(_TOTAL_PARAMS_RE, text)
    return int(match.group(1).replace(",", "")) if match else None


def parse_execution_status(text: str) -> Literal["PASS", "FAIL"] | None:
    """The last ``Execution status: PASS|FAIL`` line every TAO task ends with."""
    match = _last_match(_EXEC_STATUS_RE, text)
    if match is None:
        return None
    return "PASS" if match.group(1) == "PASS" else "FAIL"


def parse_exported_path(text: str) -> str | None:
    """The file named by the last ``Saving exported model to <file>`` line of export."""
    text = "\n".join(clean_lines(text))
    match = _last_match(_EXPORTED_RE, text)
    return match.group(1) if match else None


_KMEANS_HEADER = "Please use following anchor sizes in YOLO config:"
_ANCHOR_RE = re.compile(r"^\s*\(\s*(" + _FLOAT + r")\s*,\s*(" + _FLOAT + r")\s*\)\s*,?\s*$")


def parse_kmeans_anchors(text: str) -> list[tuple[float, float]]:
    """The ``(w, h)`` anchors printed after the last ``Please use following anchor sizes...``.

    Empty when the header is missing. Reading stops at the first line that is not an anchor.
    """
    lines = clean_lines(text)
    start = None
    for index, line in enumerate(lines):
        if _KMEANS_HEADER in line:
            start = index
    if start is None:
        return []
    anchors: list[tuple[float, float]] = []
    for line in lines[start + 1 :]:
        if not line.strip() and not anchors:
            continue
        match = _ANCHOR_RE.match(line)
        if match is None:
            break
        anchors.append((float(match.group(1)), float(match.group(2))))
    return anchors


# ---------------------------------------------------------------------------------------
# status.json


def parse_status_json(text: str) -> list[dict[str, Any]]:
    """The entries of TAO's ``status.json`` (JSON Lines, appended by the task).

    Lines that are not a JSON object (a truncated last line, garbage) are skipped.
    """
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries


def last_status(entries: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The last entry that carries a ``status`` (STARTED, RUNNING, SUCCESS, FAILURE, SKIPPED)."""
    last = None
    for entry in entries:
        if "status" in entry:
            last = entry
    return last


# ---------------------------------------------------------------------------------------
# Keras progress lines


@dataclass(frozen=True)
class KerasProgress:
    """One Keras console line understood.

    ``kind`` says which fields are set:
    - ``"epoch"``: ``Epoch 3/80`` -> epoch, max_epoch;
    - ``"step"``: ``85/85 [====] - 18s 210ms/step - loss: 1.7293`` or the partial
      ``12/85 [===>...] - ETA: 14s - loss: 1.9`` -> step, steps, loss, eta_seconds (None on
      the final line of an epoch), elapsed_seconds (final line only), metrics (every
      ``name: value`` pair, loss included);
    - ``"checkpoint"``: ``Epoch 00003: saving model to <path>`` -> epoch, saved_path.
    """

    kind: Literal["epoch", "step", "checkpoint"]
    epoch: int | None = None
    max_epoch: int | None = None
    step: int | None = None
    steps: int | None = None
    loss: float | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float | None = None
    saved_path: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)


_EPOCH_RE = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)\s*$")
_SAVED_RE = re.compile(r"^\s*Epoch\s+(\d+):.*?saving model to\s+(\S.*?)\s*$")
_STEP_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s+\[[=>.]*\](?P<rest>.*)$")
_ETA_RE = re.compile(r"ETA:\s*(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d+)?)(s?)")
_ELAPSED_RE = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)(s|ms|us)\b")
_METRIC_RE = re.compile(r"(?:^|\s)-\s+([A-Za-z_][\w./-]*):\s*(" + _FLOAT + r")(?=\s|$)")


def _eta_seconds(match: re.Match[str]) -> float:
    first, second, last, unit = match.groups()
    # Keras prints "14s", "1:02" (m:ss) and "1:02:03" (h:mm:ss).
    parts = [int(p) for p in (first, second) if p is not None]
    seconds = float(last)
    if not parts:
        return seconds
    if len(parts) == 1:
        return parts[0] * 60 + seconds
    return parts[0] * 3600 + parts[1] * 60 + seconds


def _parse_progress_segment(segment: str) -> KerasProgress | None:
    match = _EPOCH_RE.match(segment)
    if match:
        return KerasProgress(kind="epoch", epoch=int(match.group(1)), max_epoch=int(match.group(2)))
    match = _SAVED_RE.match(segment)
    if match:
        return KerasProgress(kind="checkpoint", epoch=int(match.group(1)), saved_path=match.group(2))
    match = _STEP_RE.match(segment)
    if match is None:
        return None
    rest = match.group("rest")
    metrics = {name: _to_float(value) for name, value in _METRIC_RE.findall(rest)}
    eta_match = _ETA_RE.search(rest)
    eta = _eta_seconds(eta_match) if eta_match else None
    elapsed = None
    if eta_match is None:
        elapsed_match = _ELAPSED_RE.match(rest)
        if elapsed_match:
            scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[elapsed_match.group(2)]
            elapsed = float(elapsed_match.group(1)) * scale
    return KerasProgress(
        kind="step",
        step=int(match.group(1)),
        steps=int(match.group(2)),
        loss=metrics.get("loss"),
        eta_seconds=eta,
        elapsed_seconds=elapsed,
        metrics=metrics,
    )


def parse_keras_line(line: str) -> KerasProgress | None:
    """Understand one line of Keras console output; None for anything else.

    ANSI codes are ignored; a line holding several ``\\r`` redraws yields its last
    understood one.
    """
    segments: Iterator[str] = reversed(strip_ansi(line).rstrip("\n").split("\r"))
    for segment in segments:
        if not segment.strip():
            continue
        parsed = _parse_progress_segment(segment)
        if parsed is not None:
            return parsed
    return None


# --- pytorch-ssd (ssd_mobilenet) --------------------------------------------------------------

_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)"
_PSSD_STEP = re.compile(rf"Epoch: (\d+), Step: (\d+)/(\d+), Avg Loss: {_NUMBER}")
_PSSD_VALIDATION = re.compile(rf"Epoch: (\d+), Validation Loss: {_NUMBER}")
_PSSD_CHECKPOINT = re.compile(r"^(?P<net>.+)-Epoch-(?P<epoch>\d+)-Loss-(?P<loss>.+)\.pth$")
_PSSD_AP_LINE = re.compile(rf"^(\S.*?): {_NUMBER}\s*$")
_PSSD_MAP = re.compile(rf"Average Precision Across All Classes:\s*{_NUMBER}")


@dataclass(frozen=True)
class SsdStep:
    """A pytorch-ssd training line: a step's running loss (validation None), or an epoch's validation loss."""

    epoch: int  # as train_ssd.py counts, from 0
    step: int | None
    steps: int | None
    loss: float | None
    validation_loss: float | None


def parse_pytorch_ssd_line(text: str) -> SsdStep | None:
    """`Epoch: N, Step: i/n, Avg Loss: x, ...` or `Epoch: N, Validation Loss: x, ...` (train_ssd.py's log)."""
    match = _PSSD_STEP.search(text)
    if match:
        return SsdStep(int(match[1]), int(match[2]), int(match[3]), float(match[4]), None)
    match = _PSSD_VALIDATION.search(text)
    if match:
        return SsdStep(int(match[1]), None, None, None, float(match[2]))
    return None


def parse_pytorch_ssd_checkpoint(name: str) -> tuple[str, int, float] | None:
    """(net, epoch, validation loss) from `<net>-Epoch-<N>-Loss-<loss>.pth`; None for another name."""
    match = _PSSD_CHECKPOINT.match(name)
    if not match:
        return None
    try:
        return match["net"], int(match["epoch"]), float(match["loss"])
    except ValueError:
        return None


def parse_pytorch_ssd_eval(text: str) -> APResult | None:
    """eval_ssd.py's `Average Precision Per-class:` block and `Average Precision Across All Classes:<mAP>`."""
    lines = clean_lines(text)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Average Precision Per-class:")
    except StopIteration:
        return None
    ap: dict[str, float] = {}
    for line in lines[start + 1:]:
        mean = _PSSD_MAP.search(line)
        if mean:
            return APResult(ap=ap, map=float(mean[1]))
        match = _PSSD_AP_LINE.match(line.strip())
        if match:
            ap[match[1]] = float(match[2])
    return None
