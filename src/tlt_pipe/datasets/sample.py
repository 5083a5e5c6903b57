"""A small synthetic CRPD-format dataset: the bundled sample data for demos and tests.

Street-like 640x360 frames with drawn licence plates (slightly rotated quadrilaterals in
the CRPD colours with light character blocks) and matching CRPD labels: eight corner
numbers in a varying order, the plate type and the plate text, in the real layout
`CRPD_{single,double,multi}/{train,val}/{images,labels}/`.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 640, 360
PROVINCES = "京沪津渝冀晋辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云陕甘青宁新"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
# type -> (plate colour, character colour)
COLOURS = {0: ((20, 60, 190), (235, 235, 235)), 1: ((235, 190, 20), (20, 20, 20)),
           2: ((225, 180, 30), (25, 25, 25)), 3: ((240, 240, 240), (20, 20, 20))}
SUBSETS = (("single", 1, 1), ("double", 2, 2), ("multi", 3, 4))  # name, min and max plates


def sample_crpd(root: Path, n_images: int = 36, seed: int = 0) -> None:
    """Write n_images synthetic frames with CRPD labels under root (created if needed)."""
    rng = random.Random(seed)
    root = Path(root)
    shares = (0.5, 0.3, 0.2)
    counts = [max(1, round(n_images * s)) for s in shares]
    counts[0] += n_images - sum(counts)
    index = 0
    for (subset, low, high), count in zip(SUBSETS, counts):
        for i in range(max(count, 0)):
            split = "val" if i % 5 == 4 else "train"
            directory = root / f"CRPD_{subset}" / split
            (directory / "images").mkdir(parents=True, exist_ok=True)
            (directory / "labels").mkdir(parents=True, exist_ok=True)
            stem = f"{rng.randint(10, 99)}_{index:04d}"
            index += 1
            image, lines = _frame(rng, rng.randint(low, high))
            image.save(directory / "images" / f"{stem}.jpg", quality=85)
            (directory / "labels" / f"{stem}.txt").write_text("".join(f"{l}\n" for l in lines), encoding="utf-8")


def _frame(rng: random.Random, plates: int) -> tuple[Image.Image, list[str]]:
    top = tuple(rng.randint(90, 170) for _ in range(3))
    image = Image.new("RGB", (WIDTH, HEIGHT), top)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, HEIGHT // 2, WIDTH, HEIGHT], fill=(70, 70, 75))  # road
    for _ in range(rng.randint(2, 5)):  # car bodies and clutter
        x, y = rng.randint(0, WIDTH - 60), rng.randint(HEIGHT // 3, HEIGHT - 40)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        draw.rectangle([x, y, x + rng.randint(60, 200), y + rng.randint(30, 90)], fill=colour)
    lines = []
    cell = WIDTH // plates
    for p in range(plates):
        plate_type = rng.choice((0, 0, 0, 1, 2, 3))
        w = rng.uniform(60, min(130, cell - 20))
        h = w / (2.0 if plate_type == 2 else 3.4)
        cx = cell * p + cell / 2 + rng.uniform(-(cell - w) / 4, (cell - w) / 4)
        cy = rng.uniform(HEIGHT * 0.45, HEIGHT - h)
        angle = math.radians(rng.uniform(-12, 12))
        corners = []
        for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
            corners.append((cx + dx * math.cos(angle) - dy * math.sin(angle),
                            cy + dx * math.sin(angle) + dy * math.cos(angle)))
        back, ink = COLOURS[plate_type]
        draw.polygon(corners, fill=back, outline=(10, 10, 10))
        for k in range(7):  # character blocks
            fx = -0.42 + k * 0.125
            bx = cx + fx * w * math.cos(angle)
            by = cy + fx * w * math.sin(angle)
            draw.rectangle([bx - w * 0.04, by - h * 0.28, bx + w * 0.04, by + h * 0.28], fill=ink)
        start = rng.randrange(4)  # CRPD's corner order is not consistent
        order = corners[start:] + corners[:start]
        if rng.random() < 0.3:
            order.reverse()
        text = rng.choice(PROVINCES) + rng.choice(LETTERS) + "".join(rng.choice(LETTERS + DIGITS) for _ in range(5))
        numbers = " ".join(f"{v:.0f}" for point in order for v in point)
        lines.append(f"{numbers} {plate_type} {text}")
    return image, lines
