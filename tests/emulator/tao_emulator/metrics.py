"""Deterministic fake numbers: everything is a function of the inputs (hashes), never of time."""

from __future__ import annotations

import hashlib
import json
import math


def unit(*parts) -> float:
    """A stable pseudo-random number in [0, 1) derived from the parts."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def skill_cap(meta_or_flags: dict) -> float:
    """The best a model can get: pretrained backbones reach higher than training from scratch."""
    cap = 0.93 if meta_or_flags.get("pretrained") else 0.72
    ratio = meta_or_flags.get("pruned_ratio", 1.0)
    if ratio < 1.0:
        cap *= 0.94 + 0.06 * ratio
    if meta_or_flags.get("qat"):
        cap *= 0.985
    return cap


# Parameters of a detector by backbone depth (the order of magnitude of TAO's ResNet SSD/YOLO models).
BASE_PARAMS = {10: 5_400_000, 18: 13_200_000, 34: 23_300_000, 50: 27_100_000, 101: 46_000_000}


def params(nlayers, pruned_ratio: float = 1.0) -> int:
    """How many parameters a model has: its backbone's count scaled by what pruning kept."""
    base = BASE_PARAMS.get(nlayers) if isinstance(nlayers, int) else None
    return int((base or 9_800_000) * pruned_ratio)


# The peak learning rate each family trains best with (the values of NVIDIA's sample specs).
BEST_LR = {"ssd": 1e-2, "dssd": 1e-2, "retinanet": 1e-2, "yolo_v3": 1e-4, "yolo_v4": 1e-4, "yolo_v4_tiny": 1e-4,
           "detectnet_v2": 5e-4, "rtdetr": 1e-4, "dino": 2e-4}


def hyper_quality(net: str, max_lr: float | None, batch: int | None) -> float:
    """How well the hyperparameters suit training, in (0, 1]: best with the family's peak learning rate
    (falling off over about a decade either side), a little better with smaller batches."""
    quality = 1.0
    if max_lr and max_lr > 0:
        quality *= math.exp(-0.5 * (math.log10(max_lr / BEST_LR.get(net, 1e-3)) / 0.8) ** 2)
    if batch and batch > 0:
        quality *= min(1.0, (8.0 / batch) ** 0.08)
    return max(quality, 0.02)


def train_step(skill: float, cap: float, n_images: int, fp: str, epoch: int, quality: float = 1.0) -> float:
    """Skill after one more epoch: moves a fraction of the way to the cap (less with poor hyperparameters)."""
    rate = (0.12 + 0.08 * min(1.0, n_images / 500.0)) * quality
    jitter = (unit("step", fp, epoch) - 0.5) * 0.004
    return max(0.0, min(cap, skill + (cap - skill) * rate + jitter))


def class_ap(skill: float, fp: str, cls: str, data_fp: str) -> float:
    spread = 0.85 + 0.25 * unit("class", cls, data_fp)
    noise = (unit("ap", fp, cls, data_fp) - 0.5) * 0.006
    return round(max(0.0, min(0.9999, skill * spread + noise)), 6)


def class_aps(skill: float, fp: str, classes: list[str], data_fp: str) -> dict[str, float]:
    return {c: class_ap(skill, fp, c, data_fp) for c in sorted(classes)}


def loss(skill: float, fp: str, epoch: int) -> float:
    return round(0.25 + 9.0 * (1.0 - skill) ** 2 + 0.05 * unit("loss", fp, epoch), 5)


def validation_loss(skill: float, fp: str, epoch: int) -> float:
    return round(0.3 + 10.0 * (1.0 - skill) ** 2 + 0.08 * unit("vloss", fp, epoch), 5)


def learning_rate(schedule_name: str, sched, epoch: int, num_epochs: int) -> float:
    """Soft-start annealing (exponential ramps) or soft-start cosine, at the start of an epoch."""
    p = (epoch - 1) / max(1, num_epochs)
    if schedule_name == "soft_start_annealing_schedule":
        lo, hi = sched.min_learning_rate, sched.max_learning_rate
        if p < sched.soft_start:
            return lo * (hi / lo) ** (p / sched.soft_start)
        if p < sched.annealing:
            return hi
        return hi * (lo / hi) ** ((p - sched.annealing) / max(1e-9, 1.0 - sched.annealing))
    hi = sched.max_learning_rate
    lo = sched.min_learning_rate or hi * 0.01
    if p < sched.soft_start:
        return lo + (hi - lo) * p / sched.soft_start
    q = (p - sched.soft_start) / max(1e-9, 1.0 - sched.soft_start)
    return lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * q))


def prune_ratio(pth: float, fp: str, equalization: str, min_filters: int, granularity: int) -> float:
    """Decreasing in the threshold; the jitter depends on the model only, so order is preserved."""
    eq_factor = {"union": 1.0, "arithmetic_mean": 0.95, "geometric_mean": 0.93,
                 "intersection": 0.9}.get(equalization, 1.0)
    base = 1.0 / (1.0 + 9.0 * max(0.0, pth) ** 0.8) * eq_factor
    base *= 0.97 + 0.06 * unit("prune", fp)
    floor = min(0.9, 0.02 + min_filters / 512.0 + granularity / 2048.0)
    return round(max(floor, min(1.0, base)), 6)
