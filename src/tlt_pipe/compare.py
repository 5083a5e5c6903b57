"""`tltpipe compare runs/a runs/b`: what differs in the resolved configs, and the metrics side by side.

Pure over the loaded inputs (``compare_runs`` takes manifests and config mappings); ``load_run`` is
the one reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from tlt_pipe.errors import ConfigError
from tlt_pipe.manifest import Manifest, load_manifest
from tlt_pipe.summary import json_safe

_MISSING = "<absent>"


@dataclass(frozen=True)
class ConfigDiff:
    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class MetricDiff:
    stage: str
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | int | None:
        if self.a is None or self.b is None:
            return None
        change = self.b - self.a
        return change if isinstance(change, int) else round(change, 6)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    config: list[ConfigDiff]
    metrics: list[MetricDiff]

    def as_json(self) -> dict[str, Any]:
        return json_safe({"a": self.a, "b": self.b, "config": [asdict(d) for d in self.config],
                          "metrics": [{**asdict(m), "delta": m.delta} for m in self.metrics]})


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 6}} -> {"train.epochs": 6}; lists are leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ConfigDiff]:
    flat_a, flat_b = flatten(a), flatten(b)
    keys = sorted(set(flat_a) | set(flat_b))
    return [ConfigDiff(k, flat_a.get(k, _MISSING), flat_b.get(k, _MISSING)) for k in keys
            if flat_a.get(k, _MISSING) != flat_b.get(k, _MISSING)]


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


def metric_diff(a: Manifest, b: Manifest) -> list[MetricDiff]:
    stages = list(dict.fromkeys([*a.stages, *b.stages]))
    rows = []
    for stage in stages:
        numbers_a, numbers_b = _numbers(a, stage), _numbers(b, stage)
        for metric in dict.fromkeys([*numbers_a, *numbers_b]):
            rows.append(MetricDiff(stage, metric, numbers_a.get(metric), numbers_b.get(metric)))
    return rows


def compare_runs(name_a: str, a: Manifest, config_a: Mapping[str, Any], name_b: str, b: Manifest,
                 config_b: Mapping[str, Any]) -> Comparison:
    return Comparison(name_a, name_b, config_diff(config_a, config_b), metric_diff(a, b))


def load_run(run_dir: Path) -> tuple[Manifest, dict[str, Any]]:
    manifest = load_manifest(run_dir)
    if manifest is None:
        raise ConfigError(f"{run_dir}: no manifest.json here; is it a tltpipe run directory?")
    path = run_dir / manifest.config
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        config = {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the run's config: {exc}") from None
    return manifest, config if isinstance(config, dict) else {}
