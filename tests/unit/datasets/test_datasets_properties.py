"""Round trips of boxes between formats stay within a pixel; corner order never matters."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_pipe.datasets import ConvertOptions, convert, kitti
from tlt_pipe.datasets.crpd import parse_crpd
from tlt_pipe.datasets.split import StratifiedSplitter
from tlt_pipe.datasets.voc import format_voc, parse_voc
from tlt_pipe.datasets.yolo import format_yolo, parse_yolo

sizes = st.tuples(st.integers(16, 4096), st.integers(16, 4096))


@st.composite
def image_and_box(draw):
    """An image size and a box inside it, at least 2 px wide and high (KITTI, 2 decimals)."""
    width, height = draw(sizes)
    x1 = draw(st.floats(0, width - 2, allow_nan=False))
    y1 = draw(st.floats(0, height - 2, allow_nan=False))
    x2 = draw(st.floats(x1 + 2, width, allow_nan=False))
    y2 = draw(st.floats(y1 + 2, height, allow_nan=False))
    return (width, height), tuple(round(v, 2) for v in (x1, y1, x2, y2))


def close(a, b, tolerance=1.0):
    return all(abs(p - q) <= tolerance for p, q in zip(a, b))


@given(image_and_box())
def test_kitti_yolo_kitti_within_a_pixel(case):
    (width, height), box = case
    [obj], _ = kitti.parse_kitti(kitti.format_line("car", *box))
    yolo_line = format_yolo(0, (obj.x1, obj.y1, obj.x2, obj.y2), width, height)
    [back], problems = parse_yolo(yolo_line, ("car",), width, height)
    assert problems == []
    clamped, _ = kitti.clamp((back.x1, back.y1, back.x2, back.y2), width, height)
    [again], _ = kitti.parse_kitti(kitti.format_line(back.cls, *clamped))
    assert close((again.x1, again.y1, again.x2, again.y2), box)


@st.composite
def voc_box(draw):
    width, height = draw(sizes)
    xmin = draw(st.integers(1, width - 1))
    ymin = draw(st.integers(1, height - 1))
    xmax = draw(st.integers(xmin + 1, width))
    ymax = draw(st.integers(ymin + 1, height))
    return (width, height), (xmin, ymin, xmax, ymax)


@given(voc_box())
def test_voc_kitti_voc_within_a_pixel(case):
    (width, height), (xmin, ymin, xmax, ymax) = case
    xml = (
        f"<annotation><object><name>dog</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object></annotation>"
    ).encode()
    [obj], _ = parse_voc(xml)
    box, moved = kitti.clamp((obj.x1, obj.y1, obj.x2, obj.y2), width, height)
    assert not moved
    assert close(box, (xmin - 1, ymin - 1, xmax - 1, ymax - 1), 0)  # VOC 1-based -> 0-based
    [line_obj], _ = kitti.parse_kitti(kitti.format_line(obj.cls, *box))
    written = format_voc("x.jpg", (width, height), [("dog", line_obj.x1, line_obj.y1, line_obj.x2, line_obj.y2, 0)])
    [back], _ = parse_voc(written.encode())
    assert close((back.x1, back.y1, back.x2, back.y2), box)


@st.composite
def quadrilateral(draw):
    points = draw(st.lists(st.tuples(st.integers(0, 1920), st.integers(0, 1080)), min_size=4, max_size=4))
    return points


@given(quadrilateral(), st.integers(0, 3), st.booleans(), st.sampled_from([" ", ",", ", ", "\t"]))
def test_crpd_corner_order_never_matters(points, start, reverse, separator):
    order = points[start:] + points[:start]
    if reverse:
        order.reverse()
    line = separator.join(str(v) for point in order for v in point) + f"{separator}0{separator}A1"
    [obj], problems = parse_crpd(line)
    assert problems == []
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert (obj.x1, obj.y1, obj.x2, obj.y2) == (min(xs), min(ys), max(xs), max(ys))


@given(
    st.lists(st.sampled_from("abcdefgh"), min_size=2, max_size=120),
    st.integers(0, 2**16),
    st.floats(1, 50),
)
def test_split_every_class_with_two_images_in_both_folds(classes, seed, percent):
    splitter = StratifiedSplitter(percent, seed)
    folds: dict[str, set[str]] = {}
    for cls in classes:
        folds.setdefault(cls, set()).add(splitter.assign([cls]))
    for cls, seen in folds.items():
        if classes.count(cls) >= 2:
            assert seen == {"train", "val"}, (cls, classes.count(cls))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.floats(0.05, 0.95), st.floats(0.05, 0.95), st.floats(0.02, 0.5), st.floats(0.02, 0.5)),
        min_size=1,
        max_size=4,
    ),
    st.tuples(st.integers(32, 300), st.integers(32, 300)),
)
def test_yolo_dataset_converts_within_a_pixel(fx, boxes, size):
    """End to end through convert(): YOLO files in, KITTI files out."""
    width, height = size
    root = Path(tempfile.mkdtemp())
    try:
        fx.write_image(root / "src" / "images" / "a.jpg", size)
        fx.write_text(root / "src" / "obj.names", "thing\n")
        fx.write_text(root / "src" / "labels" / "a.txt", "".join(f"0 {cx} {cy} {w} {h}\n" for cx, cy, w, h in boxes))
        convert("yolo", root / "src", root / "out", ConvertOptions(jobs=1, val_split=0))
        [label] = (root / "out" / "train" / "labels").iterdir()
        written = [tuple(map(float, line.split()[4:8])) for line in label.read_text().splitlines()]
        expected = []
        for cx, cy, w, h in boxes:
            box, _ = kitti.clamp(
                ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height),
                width,
                height,
            )
            if not kitti.degenerate(box):
                expected.append(box)
        assert len(written) == len(expected)
        for got, want in itertools.zip_longest(written, expected):
            assert close(got, want, 0.01)
    finally:
        shutil.rmtree(root)
