"""`tltpipe compare runs/a runs/b [runs/c ...]`: what differs in the resolved configs, and the metrics side by
side (the change against the first run).

Pure over the loaded inputs (``compare_runs`` takes manifests and config mappings); ``load_run`` is
the one reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlt_pipe import yamldoc
from tlt_pipe.errors import ConfigError
from tlt_pipe.manifest import Manifest, load_manifest
from tlt_pipe.regular_file import read_text
from tlt_pipe.summary import json_safe

_MISSING = "<absent>"


@dataclass(frozen=True)
class ConfigDiff:
    key: str
    values: tuple[Any, ...]  # one per run, in the order given


@dataclass(frozen=True)
class MetricDiff:
    stage: str
    metric: str
    values: tuple[float | None, ...]  # one per run

    @property
    def deltas(self) -> tuple[float | int | None, ...]:
        """Each run's value minus the first run's (None where either is missing)."""
        first = self.values[0]
        out: list[float | int | None] = []
        for value in self.values:
            if first is None or value is None:
                out.append(None)
            else:
                change = value - first
                out.append(change if isinstance(change, int) else round(change, 6))
        return tuple(out)


@dataclass(frozen=True)
class Comparison:
    runs: tuple[str, ...]
    config: list[ConfigDiff]
    metrics: list[MetricDiff]

    def as_json(self) -> dict[str, Any]:
        return json_safe({"runs": list(self.runs),
                          "config": [{"key": d.key, "values": list(d.values)} for d in self.config],
                          "metrics": [{"stage": m.stage, "metric": m.metric, "values": list(m.values),
                                       "deltas": list(m.deltas)} for m in self.metrics]})


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 6}} -> {"train.epochs": 6}; lists are leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_diff(configs: Sequence[Mapping[str, Any]]) -> list[ConfigDiff]:
    """The keys whose value is not the same in every config."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat))
    rows = [ConfigDiff(k, tuple(f.get(k, _MISSING) for f in flat)) for k in keys]
    return [r for r in rows if any(v != r.values[0] for v in r.values[1:])]


def _numbers(manifest: Manifest, stage: str) -> dict[str, float]:
    record = manifest.stages.get(stage)
    if record is None:
        return {}
    out: dict[str, float] = {}
    if record.duration_s is not None:
        out["duration_s"] = record.duration_s
    for key, value in record.metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        elif key == "ap" and isinstance(value, Mapping):
            out.update({f"AP {cls}": ap for cls, ap in value.items() if isinstance(ap, (int, float))})
    return out


def metric_diff(manifests: Sequence[Manifest]) -> list[MetricDiff]:
    stages = list(dict.fromkeys(name for m in manifests for name in m.stages))
    rows = []
    for stage in stages:
        numbers = [_numbers(m, stage) for m in manifests]
        for metric in dict.fromkeys(k for n in numbers for k in n):
            rows.append(MetricDiff(stage, metric, tuple(n.get(metric) for n in numbers)))
    return rows


def compare_runs(runs: Sequence[tuple[str, Manifest, Mapping[str, Any]]]) -> Comparison:
    """runs: (name, manifest, resolved config) of each run, two or more."""
    return Comparison(tuple(name for name, _, _ in runs), config_diff([c for _, _, c in runs]),
                      metric_diff([m for _, m, _ in runs]))


def load_run(run_dir: Path) -> tuple[Manifest, dict[str, Any]]:
    manifest = load_manifest(run_dir)
    if manifest is None:
        raise ConfigError(f"{run_dir}: no manifest.json here; is it a tltpipe run directory?")
    path = run_dir / manifest.config
    try:
        _, config = yamldoc.read(read_text(path), str(path))
    except FileNotFoundError:
        config = {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the run's config: {exc}") from None
    return manifest, config if isinstance(config, dict) else {}
