"""Small PNG charts drawn with Pillow (already a dependency): lines per epoch, grouped bars, points.

Why not matplotlib: the report needs three plain chart shapes, and Pillow draws them in a few
milliseconds with no extra 40 MB install, so `tltpipe report` works in every installation and CI
stays fast. Pure: data in, a PIL image out; nothing here touches files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 450
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 24, 48, 56
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
_GRID = "#e5e5e5"
_INK = "#222222"

Point = tuple[float, float]


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart). A range too narrow for
    floats to step through (1e16 and its next float) is widened; one too wide for a float (+-1.7e308) is clamped."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    low, high = max(min(low, high), -1e300), min(max(low, high), 1e300)
    if high - low <= max(abs(low), abs(high)) * 1e-9:
        pad = max(abs(low), abs(high)) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    steps = min(int((high - first) / step + 0.999), 4 * max(1, count))
    return [float(round(first + i * step, 12)) for i in range(steps + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        return f"{value:.1e}"
    return f"{value:.4g}"


@dataclass
class _Frame:
    """Maps data coordinates into the plot area of an image."""

    x0: float
    x1: float
    y0: float
    y1: float

    def px(self, x: float, y: float) -> tuple[float, float]:
        fx = (x - self.x0) / ((self.x1 - self.x0) or 1)
        fy = (y - self.y0) / ((self.y1 - self.y0) or 1)
        return _LEFT + fx * (WIDTH - _LEFT - _RIGHT), HEIGHT - _BOTTOM - fy * (HEIGHT - _TOP - _BOTTOM)


def _canvas(title: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((WIDTH / 2, 14), title, fill=_INK, font=font(18), anchor="mt")
    return image, draw


def _axes(draw: ImageDraw.ImageDraw, frame: _Frame, yticks: list[float], xlabel: str, ylabel: str,
          xticks: Sequence[tuple[float, str]]) -> None:
    small = font(12)
    for y in yticks:
        _, py = frame.px(frame.x0, y)
        draw.line([(_LEFT, py), (WIDTH - _RIGHT, py)], fill=_GRID)
        draw.text((_LEFT - 6, py), _label(y), fill=_INK, font=small, anchor="rm")
    for x, text in xticks:
        px, _ = frame.px(x, frame.y0)
        draw.line([(px, HEIGHT - _BOTTOM), (px, HEIGHT - _BOTTOM + 4)], fill=_INK)
        draw.text((px, HEIGHT - _BOTTOM + 6), text, fill=_INK, font=small, anchor="mt")
    draw.line([(_LEFT, _TOP), (_LEFT, HEIGHT - _BOTTOM), (WIDTH - _RIGHT, HEIGHT - _BOTTOM)], fill=_INK)
    draw.text(((_LEFT + WIDTH - _RIGHT) / 2, HEIGHT - 18), xlabel, fill=_INK, font=font(13), anchor="mm")
    draw.text((8, _TOP - 20), ylabel, fill=_INK, font=font(13), anchor="lm")


def _legend(draw: ImageDraw.ImageDraw, names: Sequence[str]) -> None:
    small = font(12)
    y = _TOP + 6
    if names:
        x = WIDTH - _RIGHT - 156
        draw.rectangle([x, y - 4, WIDTH - _RIGHT - 2, y + 18 * len(names)], fill="white", outline=_GRID)
    for index, name in enumerate(names):
        x = WIDTH - _RIGHT - 150
        draw.rectangle([x, y + 2, x + 12, y + 12], fill=COLOURS[index % len(COLOURS)])
        draw.text((x + 18, y), name, fill=_INK, font=small)
        y += 18


def _empty(draw: ImageDraw.ImageDraw, message: str) -> None:
    draw.text((WIDTH / 2, HEIGHT / 2), message, fill="#888888", font=font(14), anchor="mm")


def png(image: Image.Image) -> bytes:
    """The image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float | None]]], *,
               xlabel: str = "epoch", ylabel: str = "") -> Image.Image:
    """One line with markers per series; points whose y is None (or nan) are left out."""
    image, draw = _canvas(title)
    clean = {name: [(x, y) for x, y in points if y is not None and math.isfinite(y)] for name, points in series.items()}
    every = [p for points in clean.values() for p in points]
    if not every:
        _empty(draw, "no data")
        return image
    xs, ys = [p[0] for p in every], [p[1] for p in every]
    yticks = nice_ticks(min(ys), max(ys))
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    frame = _Frame(x0, x1, yticks[0], yticks[-1])
    whole = all(float(x).is_integer() for x in xs)  # epochs: no 2.5 on the axis
    xticks = [(x, _label(x)) for x in nice_ticks(x0, x1, 8) if x0 <= x <= x1 and (not whole or x.is_integer())]
    _axes(draw, frame, yticks, xlabel, ylabel, xticks)
    for index, (name, points) in enumerate(clean.items()):
        colour = COLOURS[index % len(COLOURS)]
        pixels = [frame.px(x, y) for x, y in points]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    _legend(draw, [n for n, p in clean.items() if p])
    return image


def bar_chart(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
              ylabel: str = "") -> Image.Image:
    """Grouped bars: one group per label in ``groups``, one bar per series within it."""
    image, draw = _canvas(title)
    values = [v for vs in series.values() for v in vs if v is not None]
    if not groups or not values:
        _empty(draw, "no data")
        return image
    yticks = nice_ticks(min(0.0, min(values)), max(values))
    frame = _Frame(0, len(groups), yticks[0], yticks[-1])
    _axes(draw, frame, yticks, "", ylabel, [(i + 0.5, g) for i, g in enumerate(groups)])
    width = 0.8 / max(1, len(series))
    for index, (name, bars) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        for group, value in enumerate(bars):
            if value is None:
                continue
            left = group + 0.1 + index * width
            x_a, y_a = frame.px(left, value)
            x_b, y_b = frame.px(left + width * 0.9, max(0.0, yticks[0]))
            draw.rectangle([x_a, min(y_a, y_b), x_b, max(y_a, y_b)], fill=colour)
            draw.text(((x_a + x_b) / 2, min(y_a, y_b) - 2), f"{value:.3f}", fill=_INK, font=font(11), anchor="mb")
    _legend(draw, list(series))
    return image


def point_chart(title: str, points: Sequence[tuple[str, float, float]], *, xlabel: str = "",
                ylabel: str = "") -> Image.Image:
    """Labelled points (label, x, y) joined in the order given."""
    image, draw = _canvas(title)
    if not points:
        _empty(draw, "no data")
        return image
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    xticks = nice_ticks(min(0.0, min(xs)), max(1.0, max(xs)))
    yticks = nice_ticks(min(ys), max(ys))
    frame = _Frame(xticks[0], xticks[-1], yticks[0], yticks[-1])
    _axes(draw, frame, yticks, xlabel, ylabel, [(x, _label(x)) for x in xticks])
    pixels = [frame.px(x, y) for _, x, y in points]
    if len(pixels) > 1:
        draw.line(pixels, fill=COLOURS[0], width=2)
    for (label, _, y), (px, py) in zip(points, pixels):
        draw.ellipse([px - 5, py - 5, px + 5, py + 5], fill=COLOURS[1])
        right = px > WIDTH * 0.6  # labels of points near the right edge go to their left
        draw.text((px - 8 if right else px + 8, py - 8), f"{label} ({y:.3f})", fill=_INK, font=font(12),
                  anchor="rb" if right else "lb")
    return image
