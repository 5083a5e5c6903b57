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


@dataclass(frozen=True)
class EngineAccuracy:
    """The TensorRT engine's mAP against the retrained model's, and where it ran."""

    precision: str
    model_map: float
    engine_map: float
    drop: float  # model - engine: what the reduced precision (and TensorRT) cost
    ran_on: str  # GPU and TensorRT, as far as known
    warnings: tuple[str, ...]

    @property
    def line(self) -> str:
        relative = f" ({100 * self.drop / self.model_map:.1f}% of it)" if self.model_map else ""
        verdict = (f"drop {self.drop:.4f}{relative}" if self.drop > 0 else
                   f"gain {-self.drop:.4f}" if self.drop < 0 else "no drop")
        where = f" on {self.ran_on}" if self.ran_on else ""
        return (f"{self.precision.upper()} engine: mAP {self.engine_map:.4f} against the model's "
                f"{self.model_map:.4f}: {verdict}{where}")


def engine_accuracy(manifest: Manifest) -> EngineAccuracy | None:
    """From evaluate_engine, when it succeeded with the model's mAP to compare with."""
    record = manifest.stages.get("evaluate_engine")
    if record is None or record.status != "succeeded":
        return None
    m = record.metrics
    if not all(isinstance(m.get(k), (int, float)) for k in ("mAP", "model_mAP", "mAP_drop")):
        return None
    ran = m.get("ran_on") if isinstance(m.get("ran_on"), dict) else {}
    where = ", ".join(v for v in (ran.get("gpu"), ran.get("tensorrt") and f"TensorRT {ran['tensorrt']}") if v)
    return EngineAccuracy(str(m.get("precision", "")), m["model_mAP"], m["mAP"], m["mAP_drop"], where,
                          tuple(record.warnings))


def summary_json(manifest: Manifest) -> dict[str, Any]:
    stages, rows = ap_table(manifest)
    engine = engine_accuracy(manifest)
    return json_safe({
        "name": manifest.name, "network": manifest.network, "toolkit": manifest.toolkit,
        "stages": [asdict(r) for r in stage_rows(manifest)],
        "ap": {stage: {cls: values[i] for cls, values in rows} for i, stage in enumerate(stages)},
        "engine": asdict(engine) if engine else None,
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
