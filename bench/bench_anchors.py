"""Benchmark of the native YOLO anchor k-medians (tlt_pipe.anchors.kmedians_detail).

Clusters 100k synthetic normalised (w, h) boxes into k=9 anchors and prints the wall time
and the number of assignment passes per run. Two data sets:

- ``mixture``: boxes drawn around a few typical object shapes (log-normal scatter), like
  the labels of a real detection data set;
- ``uniform``: widths and heights drawn independently and uniformly, with no structure to
  find (the slow case: many boxes sit near cluster borders).

The time is the whole call (the warm start on samples included); "steps" counts the
assignment passes over all the boxes. Numbers depend on the data and the seed: the tail of
small corrections before the assignments settle can be short or long.

Run from the repository root:  python bench/bench_anchors.py [--boxes 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tlt_pipe.anchors import kmedians_detail  # noqa: E402

# Typical (w, h) of objects as fractions of the image: plates, faces, people, cars...
SHAPES = [(0.04, 0.02), (0.08, 0.03), (0.05, 0.09), (0.12, 0.12), (0.1, 0.3), (0.25, 0.15), (0.3, 0.5), (0.6, 0.4)]


def mixture_boxes(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    boxes = []
    for _ in range(n):
        w, h = rng.choice(SHAPES)
        scale = math.exp(rng.gauss(0.0, 0.35))
        aspect = math.exp(rng.gauss(0.0, 0.15))
        boxes.append((min(w * scale * aspect, 1.0), min(h * scale / aspect, 1.0)))
    return boxes


def uniform_boxes(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(0.005, 1.0), rng.uniform(0.005, 1.0)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--runs", type=int, default=3, help="seeds 0..runs-1 per data set")
    args = parser.parse_args()

    for name, make in (("mixture", mixture_boxes), ("uniform", uniform_boxes)):
        boxes = make(args.boxes, seed=1)
        times = []
        for seed in range(args.runs):
            start = time.perf_counter()
            result = kmedians_detail(boxes, args.k, seed=seed)
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            print(
                f"{name:8} n={args.boxes} k={args.k} seed={seed}: {elapsed:6.3f} s, "
                f"{result.steps} steps, converged={result.converged}, reseeded={result.reseeded}"
            )
        print(f"{name:8} median {statistics.median(times):.3f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
