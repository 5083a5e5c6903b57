"""Where a TensorRT engine was built and where it runs: the GPU and the TensorRT version a task saw.

An engine is specific to the GPU model and TensorRT version it was built with. The stages that
build or run one (StagePlan.probe) have their command started by a short shell preamble that prints
two tagged lines, the GPU (`nvidia-smi`) and the TensorRT version (`import tensorrt`), then runs the
TAO command in its place (`exec`), so its exit code and output are the task's own. A line the
machine cannot give (no nvidia-smi, no TensorRT module) is left out and reads as unknown.

    probed(argv) -> argv for the runner     parse(log) -> {gpu, compute_capability, tensorrt}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

TAG = "[tltpipe-probe]"
# compute_cap needs a driver from 2021 on; older ones answer the name alone.
_SCRIPT = (
    f"g=$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>/dev/null"
    f" || nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null); "
    f"[ -n \"$g\" ] && printf '%s gpu: %s\\n' '{TAG}' \"$(printf '%s' \"$g\" | head -n 1)\"; "
    f"python3 -c 'import tensorrt; print(\"{TAG} tensorrt:\", tensorrt.__version__)' 2>/dev/null; "
    "exec \"$@\""
)
_LINE = re.compile(rf"^{re.escape(TAG)} (gpu|tensorrt): (.+?)\s*$", re.MULTILINE)


def probed(argv: Sequence[str]) -> tuple[str, ...]:
    """The command line that prints the GPU and TensorRT lines, then runs argv (exec: same exit code)."""
    return ("sh", "-c", _SCRIPT, "tltpipe-probe", *argv)


def parse(log_text: str) -> dict[str, str]:
    """{gpu, compute_capability, tensorrt} from the probe's lines in a stage log; what is missing is left out."""
    found: dict[str, str] = {}
    for kind, value in _LINE.findall(log_text):
        if kind == "tensorrt":
            found.setdefault("tensorrt", value)
            continue
        if "gpu" in found:
            continue
        name, _, capability = value.partition(",")
        found["gpu"] = name.strip()
        if capability.strip():
            found["compute_capability"] = capability.strip()
    return found


def different_machine(built: Mapping[str, Any] | None, used: Mapping[str, Any]) -> str | None:
    """A warning when an engine runs on another GPU model or TensorRT version than it was built with."""
    if not isinstance(built, Mapping):
        return None
    changes = [f"{what} {built[key]} -> {used[key]}" for key, what in
               (("gpu", "GPU"), ("compute_capability", "compute capability"), ("tensorrt", "TensorRT"))
               if built.get(key) and used.get(key) and built[key] != used[key]]
    if not changes:
        return None
    return ("the engine runs on a different machine than it was built on (" + "; ".join(changes) + "): "
            "TensorRT engines are specific to the GPU and TensorRT version; rebuild it there "
            "(tltpipe stage engine --force) if this one fails or its results differ")


def ran_on(built: Mapping[str, Any] | None, log_text: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """Where an engine ran (the probe's lines in its stage log), and a warning when that is not where it was
    built (built: the engine stage's provenance)."""
    used = parse(log_text)
    warning = different_machine(built, used)
    return used, (warning,) if warning else ()


def beside_model(measured: Mapping[str, Any], precision: str, used: Mapping[str, str],
                 model_map: Any) -> dict[str, Any]:
    """An engine's evaluation metrics with its precision, where it ran and, when the model it came from was
    evaluated, that model's mAP and what the engine lost against it."""
    metrics = {**measured, "precision": precision, "ran_on": dict(used)}
    if isinstance(model_map, (int, float)) and not isinstance(model_map, bool):
        metrics["model_mAP"] = model_map
        metrics["mAP_drop"] = round(model_map - measured["mAP"], 6)
    return metrics
