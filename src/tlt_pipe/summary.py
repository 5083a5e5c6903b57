"""What a finished (or failed) run produced, in rows a table or a JSON reader can use. Pure."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from tlt_pipe.manifest import Manifest, StageRecord

_KEY_METRICS = (("mAP", "mAP {:.4f}"), ("pruning_ratio", "pruning ratio {:.4f}"), ("shards", "{} shards"),
                ("engine_bytes", "{:,} bytes"), ("detections", "{} detections"), ("images", "{} images"),
                ("output_blobs", "outputs {}"))


@dataclass(frozen=True)
class StageRow:
    stage: str
    status: str
    duration_s: float | None
    key_metric: str
    output: str
    reason: str | None


def _key_metric(record: StageRecord) -> str:
    for key, fmt in _KEY_METRICS:
        value = record.metrics.get(key)
        if value is not None:
            return fmt.format(value)
    return ""


def _main_output(record: StageRecord) -> str:
    for key in ("engine", "model", "results", "root", "prefix", "app_config"):
        value = record.artifacts.get(key)
        if isinstance(value, str):
            return value
    return ""


def stage_rows(manifest: Manifest) -> list[StageRow]:
    return [StageRow(name, r.status, r.duration_s, _key_metric(r), _main_output(r), r.error or r.reason)
            for name, r in manifest.stages.items()]


def ap_table(manifest: Manifest) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """(evaluation stages, [(class, [AP per stage])]) over the stages that report per-class AP."""
    stages = [n for n, r in manifest.stages.items() if r.status == "succeeded" and r.metrics.get("ap")
              and n.startswith("evaluate")]
    classes = sorted({c for n in stages for c in manifest.stages[n].metrics["ap"]})
    rows = [(c, [manifest.stages[n].metrics["ap"].get(c) for n in stages]) for c in classes]
    if stages:
        rows.append(("mAP", [manifest.stages[n].metrics.get("mAP") for n in stages]))
    return stages, rows


def summary_json(manifest: Manifest) -> dict[str, Any]:
    stages, rows = ap_table(manifest)
    return json_safe({
        "name": manifest.name, "network": manifest.network, "toolkit": manifest.toolkit,
        "stages": [asdict(r) for r in stage_rows(manifest)],
        "ap": {stage: {cls: values[i] for cls, values in rows} for i, stage in enumerate(stages)},
    })


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (in dicts, lists and tuples too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
