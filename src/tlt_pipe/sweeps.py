"""A sweep: one config run at several values of some of its keys (the prune threshold first of all).
Pure: the points, which stages they share, their results table and the recommendation. fanout.py runs
them.

    prune.threshold=0.1,0.3,0.5,0.7  --points-->  4 child configs  --shared_stages-->  prepare ... evaluate
    run once (base/), each point a run directory of its own  --rows-->  table, plot, recommendation
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tlt_pipe.config import Config, with_values
from tlt_pipe.errors import ConfigError
from tlt_pipe.manifest import Manifest, write_atomic
from tlt_pipe.summary import json_safe

if TYPE_CHECKING:
    from tlt_pipe.pipeline import Events
    from tlt_pipe.planner import Step
    from tlt_pipe.runners.base import Runner

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")
EVALUATIONS = ("evaluate_retrain", "evaluate")  # where a point's mAP comes from, first found
MODELS = ("retrain", "prune", "train")  # whose model is a point's model, first found


@dataclass(frozen=True)
class Point:
    """One combination of the swept values; name is its run directory's name."""

    name: str
    values: Mapping[str, Any]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


def parse_axes(items: Sequence[str], *, source: str = "sweep") -> dict[str, list[Any]]:
    """`KEY=V1,V2,...` (each value read as YAML: 0.1 is a number, [0, 1] a list) -> {KEY: [V1, V2, ...]}."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"{source}: {item!r}: expected KEY=VALUE[,VALUE...], e.g. prune.threshold=0.1,0.3")
        try:
            values = [yaml.safe_load(part) for part in _split(raw)]
        except yaml.YAMLError:
            raise ConfigError(f"{source}: {item!r}: a value is not valid YAML") from None
        if key in axes:
            raise ConfigError(f"{source}: {key} is swept twice; give its values once, comma-separated")
        axes[key] = values
    return axes


def _split(raw: str) -> list[str]:
    """Split on the commas outside brackets: `0.1,0.3` and `[0,1],[2]`."""
    parts, depth, current = [], 0, []
    for char in raw:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def points(axes: Mapping[str, Sequence[Any]]) -> list[Point]:
    """Every combination of the axes' values (one key: its values in order), each named for its values."""
    if not axes:
        raise ConfigError("sweep: nothing to sweep; give KEY=V1,V2 (or a sweep: params: block in the config)")
    empty = [k for k, v in axes.items() if not v]
    if empty:
        raise ConfigError(f"sweep: {empty[0]}: no values")
    for key, values in axes.items():
        seen: set[str] = set()
        for value in values:
            text = json.dumps(value, sort_keys=True, default=str)
            if text in seen:
                raise ConfigError(f"sweep: {key}: {_text(value)} is given twice (its points would run twice)")
            seen.add(text)
    keys = list(axes)
    combos = list(itertools.product(*(axes[k] for k in keys)))
    width = len(str(len(combos)))
    out = []
    for index, combo in enumerate(combos, 1):
        values = dict(zip(keys, combo))
        tag = "_".join(f"{k.rsplit('.', 1)[-1]}={_text(v)}" for k, v in values.items())
        out.append(Point(f"{index:0{width}d}-{_UNSAFE.sub('-', tag)[:80]}", values))
    return out


def _text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def shared_stages(plans: Sequence[Sequence["Step"]]) -> list[str]:
    """The leading stages every point plans identically (same image, command, specs and inputs): they run
    once. The first stage that differs, and every stage after it, runs in each point."""
    if not plans:
        return []
    shared = []
    for steps in zip(*plans):
        first = steps[0]
        if any(s.name != first.name or dict(s.parts) != dict(first.parts) for s in steps[1:]):
            break
        shared.append(first.name)
    return shared


# --- results ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One point's results. size_bytes: its final model's file; params: parameters, when the log said."""

    point: str
    values: Mapping[str, Any]
    status: str  # succeeded, failed, interrupted, ...
    mAP: float | None = None
    ap: Mapping[str, float] = field(default_factory=dict)
    delta: float | None = None  # mAP minus the baseline's
    pruning_ratio: float | None = None
    params: int | None = None
    size_bytes: int | None = None
    model: str | None = None
    error: str | None = None


def point_row(point: Point, manifest: Manifest | None, sizes: Mapping[str, int], baseline: float | None,
              shared: Sequence[str] = (), error: str | None = None) -> Row:
    """A point's row from its manifest; sizes: run-relative model path -> bytes; shared: the stages it shares
    with base/ (their mAP is the trained model's, not the point's); error: what stopped the point before
    a stage could record it (a value its spec refuses, say)."""
    if manifest is None:
        return Row(point.name, point.values, "failed" if error else "not run", error=error)
    failed = next((r for r in manifest.stages.values() if r.status in ("failed", "interrupted")), None)
    status = failed.status if failed is not None else "failed" if error else "succeeded"
    stage = next((s for s in EVALUATIONS if s not in shared and manifest.metric(s, "mAP") is not None), None)
    value = manifest.metric(stage, "mAP") if stage else None
    model = next((r.artifacts["model"] for s in MODELS if (r := manifest.stages.get(s)) is not None
                  and r.status == "succeeded" and r.artifacts.get("model")), None)
    params = next((p for s in ("retrain", "train") if (p := manifest.metric(s, "params")) is not None), None)
    ratio = manifest.metric("prune", "pruning_ratio")
    if params is not None and manifest.metric("retrain", "params") is None and ratio is not None:
        params = int(params * ratio)  # no retrain: the trained model's count, less what pruning took
    return Row(point.name, point.values, status, mAP=value, ap=dict(manifest.metric(stage, "ap") or {}) if stage else {},
               delta=round(value - baseline, 6) if value is not None and baseline is not None else None,
               pruning_ratio=ratio, params=params, size_bytes=sizes.get(model) if model else None, model=model,
               error=failed.error if failed is not None else error)


def recommend(rows: Sequence[Row], baseline: float | None, max_drop: float) -> Row | None:
    """The smallest model whose mAP is within max_drop of the baseline (the trained model; without one,
    the best point); ties go to the higher mAP. None when no point qualifies."""
    done = [r for r in rows if r.status == "succeeded" and r.mAP is not None]
    if not done:
        return None
    reference = baseline if baseline is not None else max(r.mAP for r in done)  # type: ignore[type-var]
    good = [r for r in done if r.mAP >= reference - max_drop - 1e-12]  # type: ignore[operator]
    if not good:
        return None

    def size(row: Row) -> float:
        for value in (row.size_bytes, row.params, row.pruning_ratio):
            if value is not None:
                return float(value)
        return math.inf

    return min(good, key=lambda r: (size(r), -(r.mAP or 0.0)))


def recommendation(best: Row | None, baseline: float | None, max_drop: float) -> str:
    """One line: which point to take, and why."""
    against = "the trained model" if baseline is not None else "the best point"
    if best is None:
        return f"recommended: none (no point keeps its mAP within {max_drop} of {against})"
    size = f", {best.size_bytes / 1e6:.2f} MB" if best.size_bytes is not None else ""
    ratio = f", {best.pruning_ratio:.0%} of the parameters kept" if best.pruning_ratio is not None else ""
    delta = f" ({best.delta:+.4f})" if best.delta is not None else ""
    values = ", ".join(f"{k}={_text(v)}" for k, v in best.values.items())
    return (f"recommended: {best.point} ({values}): mAP {best.mAP:.4f}{delta}{ratio}{size}; the smallest model "
            f"within {max_drop} mAP of {against}")


def table_csv(rows: Sequence[Row]) -> str:
    """point, each swept key, status, mAP, delta, pruning ratio, params, size, AP per class."""
    keys = list(dict.fromkeys(k for r in rows for k in r.values))
    classes = sorted({c for r in rows for c in r.ap})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["point", *keys, "status", "mAP", "delta_mAP", "pruning_ratio", "params", "size_bytes",
                     *[f"AP_{c}" for c in classes]])
    for r in rows:
        writer.writerow([r.point, *[_text(r.values.get(k)) for k in keys], r.status, _blank(r.mAP), _blank(r.delta),
                         _blank(r.pruning_ratio), _blank(r.params), _blank(r.size_bytes),
                         *[_blank(r.ap.get(c)) for c in classes]])
    return out.getvalue()


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def table_json(rows: Sequence[Row], baseline: float | None, best: Row | None, max_drop: float) -> dict[str, Any]:
    return {"baseline_mAP": baseline, "max_drop": max_drop, "recommended": best.point if best else None,
            "points": [asdict(r) | {"values": dict(r.values), "ap": dict(r.ap)} for r in rows]}


def numeric_axis(rows: Sequence[Row]) -> str | None:
    """The one swept key, when there is one and its values are numbers (the x axis of the plot)."""
    keys = list(dict.fromkeys(k for r in rows for k in r.values))
    if len(keys) == 1 and all(isinstance(r.values.get(keys[0]), (int, float)) and not isinstance(r.values.get(keys[0]), bool)
                              for r in rows):
        return keys[0]
    return None


# --- running a sweep (the one part here that starts anything) ------------------------------------------

@dataclass(frozen=True)
class SweepResult:
    sweep_dir: Path
    rows: list[Row]
    baseline: float | None
    recommended: Row | None
    shared: list[str]
    files: dict[str, Path]  # csv, json, plot
    max_drop: float


def default_last_stage(axes: Mapping[str, Any], retrain: bool) -> str:
    """What each point runs to: a prune sweep retrains and evaluates (or stops at prune); any other
    sweep evaluates the trained model."""
    if any(key.startswith("prune.") for key in axes):
        return "evaluate_retrain" if retrain else "prune"
    return "evaluate"


def run_sweep(config: Config, axes: Mapping[str, Sequence[Any]], *, sweep_dir: Path, key: str | None,
              events: "Events", runner_factory: Callable[[Config], "Runner"], retrain: bool = True,
              to_stage: str | None = None, jobs: int | None = None, max_drop: float = 0.02) -> SweepResult:
    """Run every point (the stages they share once, in base/), then tabulate them: sweep.csv, sweep.json
    and sweep.png in sweep_dir, and the recommendation."""
    from tlt_pipe.fanout import Child, Fanout
    from tlt_pipe.planner import Planner, Selection
    from tlt_pipe.runlock import RunLock

    chosen = points(axes)
    configs = [with_values(config, p.values, source=f"sweep point {p.name}") for p in chosen]
    same: dict[str, Point] = {}
    for point, point_config in zip(chosen, configs):  # 2 and 2.0, or 3 and "3", read as the same value
        first = same.setdefault(point_config.model_dump_json(), point)
        if first is not point:
            raise ConfigError(f"sweep: points {first.name} ({first.label()}) and {point.name} ({point.label()}) are "
                              "the same config; give each value once")
    selection = Selection(to_stage=to_stage or default_last_stage(axes, retrain))
    sweep_dir = sweep_dir.resolve()
    base_dir = sweep_dir / "base"
    plans = [Planner(c, base_dir, key).plan(selection, None) for c in configs]
    shared = shared_stages(plans)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(sweep_dir):
        fanout = Fanout(key=key, events=events, runner_factory=runner_factory, jobs=jobs)
        base = fanout.run_base(configs[0], base_dir, shared, selection)
        children = [Child(p.name, c, sweep_dir / "points" / p.name) for p, c in zip(chosen, configs)]
        outcomes = fanout.run_children(children, config.runner, base_dir if shared else None, shared, selection)
        baseline = base.metric("evaluate", "mAP") if base is not None and "evaluate" in shared else None
        rows = [point_row(p, outcomes[p.name].manifest, _model_sizes(sweep_dir / "points" / p.name,
                                                                      outcomes[p.name].manifest), baseline, shared,
                          str(outcomes[p.name].error) if outcomes[p.name].error is not None else None)
                for p in chosen]
        best = recommend(rows, baseline, max_drop)
        files = {"csv": sweep_dir / "sweep.csv", "json": sweep_dir / "sweep.json", "plot": sweep_dir / "sweep.png"}
        write_atomic(files["csv"], table_csv(rows))
        write_atomic(files["json"], json.dumps(json_safe(table_json(rows, baseline, best, max_drop)), indent=2) + "\n")
        write_atomic(files["plot"], plot(rows, baseline))
    return SweepResult(sweep_dir, rows, baseline, best, shared, files, max_drop)


def _model_sizes(run_dir: Path, manifest: Manifest | None) -> dict[str, int]:
    sizes = {}
    for record in (manifest.stages.values() if manifest else []):
        model = record.artifacts.get("model")
        if isinstance(model, str) and (run_dir / model).is_file():
            sizes[model] = (run_dir / model).stat().st_size
    return sizes


def plot(rows: Sequence[Row], baseline: float | None = None) -> bytes:
    """mAP (and the trained model's) and model size against the swept key (or the point's number), one
    chart above the other (PNG)."""
    from PIL import Image

    from tlt_pipe import charts

    axis = numeric_axis(rows)
    xs = [float(r.values[axis]) if axis else float(i) for i, r in enumerate(rows, 1)]
    label = axis or "point"
    series = {"mAP": [(x, r.mAP) for x, r in zip(xs, rows)]}
    if baseline is not None:
        series["trained (base)"] = [(xs[0], baseline), (xs[-1], baseline)]
    top = charts.line_chart(f"mAP by {label}", series, xlabel=label, ylabel="mAP")
    bottom = charts.line_chart(f"Model size by {label}",
                               {"MB": [(x, r.size_bytes / 1e6 if r.size_bytes else None) for x, r in zip(xs, rows)]},
                               xlabel=label, ylabel="model size (MB)")
    both = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), "white")
    both.paste(top, (0, 0))
    both.paste(bottom, (0, top.height))
    return charts.png(both)
