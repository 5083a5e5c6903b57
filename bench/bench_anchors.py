#!/usr/bin/env python3
"""Benchmark of `tltpipe anchors` against TAO's anchor algorithm (bench/peer_kmeans.py).

    python bench/bench_anchors.py                  # 100,000 boxes in 18,118 label files, 3 rounds
    python bench/bench_anchors.py --rounds 5 --files 5000 --boxes 30000

Generates a KITTI dataset once in --workdir (default ~/.cache/tltpipe-bench): label files with
one to many boxes around typical object shapes, and images hard-linked from a few encoded
JPEGs of four sizes, two of them carrying a large EXIF block (as camera pictures do), so that
reading an image size costs what it costs on real data.

Each round runs both as whole processes, one after the other, with the page cache warm:
- peer: TAO's algorithm in plain numpy with Pillow reading the image sizes (peer_kmeans.py);
- tltpipe: `tltpipe anchors LABELS IMAGES -x W -y H` as installed.

Prints the wall times, the median of each, the speed-up (peer / tltpipe), and the quality of
the answers: the mean over all boxes of the best IoU with an anchor, and how many different
answers each gave over the rounds (the peer's start is unseeded; tltpipe's is seeded).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import tlt_pipe  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parent / "src"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from timing import tltpipe  # noqa: E402
from tlt_pipe.label_boxes import kitti_box_arrays  # noqa: E402

GENERATION = 1  # bump when the generated data changes: cached datasets are rebuilt
FRAMES = [(1920, 1080), (1280, 720), (640, 480), (1080, 1920)]
# Typical (w, h) of objects as fractions of the image: plates, faces, people, cars...
SHAPES = [(0.04, 0.02), (0.08, 0.03), (0.05, 0.09), (0.12, 0.12), (0.1, 0.3), (0.25, 0.15), (0.3, 0.5), (0.6, 0.4)]
ANCHOR = re.compile(r"^\(([\d.]+), ([\d.]+)\)$", re.MULTILINE)


def dataset(workdir: Path, files: int, boxes: int) -> Path:
    root = workdir / f"anchors-g{GENERATION}-{files}-{boxes}"
    if (root / "done").exists():
        return root
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    pool = []
    for index, size in enumerate(FRAMES):
        path = root / f"pool-{index}.jpg"
        exif = Image.Exif()
        if index % 2:
            exif[0x9286] = b"ASCII\0\0\0" + bytes(random.Random(index).randrange(256) for _ in range(24_000))
        Image.effect_noise(size, 40).convert("RGB").save(path, quality=90, exif=exif)
        pool.append(path)
    rng = random.Random(7)
    counts = [1] * files
    for _ in range(boxes - files):
        counts[rng.randrange(files)] += 1
    for number, count in enumerate(counts):
        stem = f"{number:06d}"
        frame = rng.randrange(len(FRAMES))
        width, height = FRAMES[frame]
        image = root / "images" / f"{stem}.jpg"
        if not image.exists():
            os.link(pool[frame], image)
        lines = []
        for _ in range(count):
            w, h = rng.choice(SHAPES)
            scale, aspect = math.exp(rng.gauss(0, 0.35)), math.exp(rng.gauss(0, 0.15))
            bw, bh = min(w * scale * aspect, 1.0) * width, min(h * scale / aspect, 1.0) * height
            x1, y1 = rng.uniform(0, width - bw), rng.uniform(0, height - bh)
            lines.append(f"car 0.00 0 0.00 {x1:.2f} {y1:.2f} {x1 + bw:.2f} {y1 + bh:.2f} "
                         "0.00 0.00 0.00 0.00 0.00 0.00 0.00\n")
        (root / "labels" / f"{stem}.txt").write_text("".join(lines))
    (root / "done").write_text("")
    return root


def run(argv: list[str]) -> tuple[float, tuple[tuple[float, float], ...]]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    anchors = tuple((float(w), float(h)) for w, h in ANCHOR.findall(done.stdout))
    return elapsed, anchors


def mean_iou(ws: np.ndarray, hs: np.ndarray, anchors, width: int, height: int) -> float:
    aw = np.array([a[0] for a in anchors]) / width
    ah = np.array([a[1] for a in anchors]) / height
    inter = np.minimum(ws[:, None], aw) * np.minimum(hs[:, None], ah)
    return float((inter / ((ws * hs)[:, None] + aw * ah - inter)).max(axis=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=18_118)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="960x544", help="network input WxH")
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "tltpipe-bench")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    root = dataset(args.workdir, args.files, args.boxes)
    labels, images = str(root / "labels"), str(root / "images")
    commands = {
        "peer": [sys.executable, str(HERE / "peer_kmeans.py"), labels, images, str(width), str(height)],
        "tltpipe": [tltpipe(), "anchors", labels, images, "-x", str(width), "-y", str(height)],
    }
    print(f"{args.boxes:,} boxes in {args.files:,} label files, {len(FRAMES)} image sizes, 9 anchors at "
          f"{width}x{height}, {os.cpu_count()} CPUs")
    for argv in commands.values():  # warm the page cache and the imports
        run(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    answers: dict[str, list[tuple]] = {name: [] for name in commands}
    for round_number in range(1, args.rounds + 1):
        line = []
        for name, argv in commands.items():
            elapsed, anchors = run(argv)
            times[name].append(elapsed)
            answers[name].append(anchors)
            line.append(f"{name} {elapsed:6.2f} s")
        print(f"round {round_number}: " + "   ".join(line))

    ws, hs = kitti_box_arrays(labels, images, size_x=width, size_y=height)
    for name, label in (("peer", "TAO's algorithm (numpy, Pillow)"), ("tltpipe", "tltpipe anchors")):
        ious = [mean_iou(ws, hs, a, width, height) for a in answers[name]]
        print(f"{label:32} median {statistics.median(times[name]):6.2f} s   mean IoU "
              f"{min(ious):.4f}..{max(ious):.4f}   {len(set(answers[name]))} different answer(s) "
              f"in {args.rounds} runs")
    ratio = statistics.median(times["peer"]) / statistics.median(times["tltpipe"])
    print(f"speed-up: {ratio:.1f}x (goal: at least 10x)")


if __name__ == "__main__":
    main()
