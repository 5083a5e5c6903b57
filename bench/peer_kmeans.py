#!/usr/bin/env python3
"""The peer for bench_anchors.py: TAO's anchor algorithm, as tao-contract.md describes it.

    python bench/peer_kmeans.py LABEL_DIR IMAGE_DIR WIDTH HEIGHT [K]

Plain numpy, the way TAO's `kmeans` task works:
- reading: every label file in name order; Pillow opens its image (found by stem) for the
  size; every line with at least 15 fields gives a box (x2 - x1, y2 - y1) divided by the
  image size; boxes without a positive size are dropped;
- k-medians: k random boxes as the start (unseeded), distance 1 - IoU of corner-aligned
  boxes, each box to its nearest centre, each centre to the per-coordinate median of its
  cluster, until no assignment changes or after 10,000 steps.

Prints the anchors in pixels of the network input, smallest first, one `(w, h)` a line, as
TAO prints them.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image


def read_boxes(label_dir: str, image_dir: str) -> np.ndarray:
    images = {}
    for name in sorted(os.listdir(image_dir)):
        images.setdefault(os.path.splitext(name)[0], name)
    boxes = []
    for name in sorted(os.listdir(label_dir)):
        if not name.endswith(".txt"):
            continue
        with Image.open(os.path.join(image_dir, images[name[:-4]])) as image:
            width, height = image.size
        with open(os.path.join(label_dir, name)) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 15:
                    continue
                w = (float(fields[6]) - float(fields[4])) / width
                h = (float(fields[7]) - float(fields[5])) / height
                if w > 0 and h > 0:
                    boxes.append((w, h))
    return np.array(boxes)


def iou(boxes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    inter = np.minimum(boxes[:, None, 0], centres[None, :, 0]) * np.minimum(boxes[:, None, 1], centres[None, :, 1])
    return inter / ((boxes[:, 0] * boxes[:, 1])[:, None] + (centres[:, 0] * centres[:, 1])[None, :] - inter)


def kmedians(boxes: np.ndarray, k: int, max_steps: int = 10000) -> np.ndarray:
    centres = boxes[np.random.choice(len(boxes), k, replace=False)].copy()
    last = np.full(len(boxes), -1)
    for _ in range(max_steps):
        nearest = np.argmin(1.0 - iou(boxes, centres), axis=1)
        if (nearest == last).all():
            break
        for j in range(k):
            centres[j] = np.median(boxes[nearest == j], axis=0)
        last = nearest
    return centres


def main() -> None:
    label_dir, image_dir, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    k = int(sys.argv[5]) if len(sys.argv) > 5 else 9
    centres = kmedians(read_boxes(label_dir, image_dir), k) * (width, height)
    print("Please use following anchor sizes in YOLO config:")
    for w, h in sorted(centres.tolist(), key=lambda c: c[0] * c[1]):
        print(f"({w:.2f}, {h:.2f})")


if __name__ == "__main__":
    main()
