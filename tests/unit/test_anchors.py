"""Native YOLO anchors: IoU k-medians, KITTI box loading and the spec form."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlt_pipe.anchors import (
    _iterate,
    anchor_groups,
    compute_anchors,
    format_anchor_shape,
    kmedians,
    kmedians_detail,
)
from tlt_pipe.errors import InputError
from tlt_pipe.label_boxes import load_kitti_boxes


def iou_distance(a, b):
    inter = min(a[0], b[0]) * min(a[1], b[1])
    return 1.0 - inter / (a[0] * a[1] + b[0] * b[1] - inter)


def blobs(centres, per_blob, spread, seed):
    """Boxes scattered multiplicatively around known shapes."""
    rng = random.Random(seed)
    boxes = []
    for w, h in centres:
        for _ in range(per_blob):
            boxes.append((w * rng.uniform(1 - spread, 1 + spread), h * rng.uniform(1 - spread, 1 + spread)))
    rng.shuffle(boxes)
    return boxes


KNOWN = [(0.03, 0.02), (0.1, 0.05), (0.08, 0.2), (0.3, 0.25), (0.7, 0.6)]


# ---------------------------------------------------------------------------------------
# kmedians


def test_recovers_known_clusters():
    boxes = blobs(KNOWN, per_blob=200, spread=0.1, seed=3)
    centres = kmedians(boxes, len(KNOWN), seed=0)
    for found, expected in zip(centres, sorted(KNOWN, key=lambda c: c[0] * c[1])):
        assert iou_distance(found, expected) < 0.05


def test_deterministic_for_a_seed():
    boxes = blobs(KNOWN, per_blob=300, spread=0.6, seed=1)
    first = kmedians_detail(boxes, 9, seed=7)
    again = kmedians_detail(list(boxes), 9, seed=7)
    assert first == again
    assert kmedians(boxes, 9, seed=7) == first.centres


def test_centres_sorted_by_area_and_assignments_follow():
    boxes = blobs(KNOWN, per_blob=100, spread=0.5, seed=2)
    result = kmedians_detail(boxes, 6, seed=1)
    areas = [w * h for w, h in result.centres]
    assert areas == sorted(areas)
    assert result.converged and result.steps >= 2
    assert len(result.assignments) == len(boxes)
    # Each box is assigned to its nearest centre (or one as near).
    for box, j in zip(boxes, result.assignments):
        assert iou_distance(box, result.centres[j]) <= min(iou_distance(box, c) for c in result.centres) + 1e-12
    # Each centre is the per-coordinate median of its cluster.
    for j, (cw, ch) in enumerate(result.centres):
        members = [b for b, a in zip(boxes, result.assignments) if a == j]
        assert (cw, ch) == (statistics.median(b[0] for b in members), statistics.median(b[1] for b in members))


def full_recomputation(boxes, start, max_steps):
    """k-medians the plain way: every distance recomputed on every pass.

    Same rules as the product: nearest centre, ties keep the current cluster else the lowest
    index; an empty cluster takes the box farthest from its nearest centre (lowest index on equal
    distance) from a cluster that keeps a box, then counts as a centre for the next empty one.
    """
    centres = list(start)
    k = len(centres)

    def nearest(box, current=None):
        ds = [iou_distance(box, c) for c in centres]
        best = min(ds)
        return current if current is not None and ds[current] == best else ds.index(best)

    def median_of(j):
        members = [b for b, a in zip(boxes, assign) if a == j]
        centres[j] = (statistics.median(b[0] for b in members), statistics.median(b[1] for b in members))

    def update():
        for j in set(assign):
            median_of(j)
        empty = [j for j in range(k) if j not in assign]
        exact = [iou_distance(b, centres[a]) for b, a in zip(boxes, assign)]
        donors = set()
        for j in empty:
            i = max((i for i in range(len(boxes)) if assign.count(assign[i]) > 1), key=lambda i: (exact[i], -i))
            donors.add(assign[i])
            assign[i] = j
            centres[j] = boxes[i]
            exact = [min(e, iou_distance(b, boxes[i])) for e, b in zip(exact, boxes)]
        for donor in donors:
            if donor in assign:
                median_of(donor)

    assign = [nearest(b) for b in boxes]
    update()
    steps = 1
    while steps < max_steps:
        new = [nearest(b, a) for b, a in zip(boxes, assign)]
        steps += 1
        if new == assign:
            return centres, assign, steps, True
        assign = new
        update()
    return centres, assign, steps, False


@pytest.mark.parametrize("case", range(24))
def test_bounded_assignment_equals_full_recomputation(case):
    rng = random.Random(case)
    n = rng.choice([12, 60, 300, 900])
    k = rng.choice([1, 2, 3, 6, 9])
    kind = case % 4
    if kind == 0:  # heavy duplicates
        boxes = [(rng.choice([0.1, 0.2, 0.3]), rng.choice([0.1, 0.5])) for _ in range(n)]
    elif kind == 1:  # pixel grid
        boxes = [(rng.randint(1, 40) / 100, rng.randint(1, 40) / 100) for _ in range(n)]
    elif kind == 2:
        boxes = [(rng.random() ** 2 + 1e-3, rng.random() ** 2 + 1e-3) for _ in range(n)]
    else:
        boxes = [(rng.lognormvariate(-2, 0.5), rng.lognormvariate(-2.5, 0.5)) for _ in range(n)]
    start = [boxes[0]] * k if case % 5 == 0 else [boxes[rng.randrange(n)] for _ in range(k)]
    max_steps = rng.choice([1, 2, 5, 10000])
    result = _iterate([b[0] for b in boxes], [b[1] for b in boxes], start, max_steps)
    assert (result.centres, result.assign.tolist(), result.steps, result.converged) == full_recomputation(
        boxes, start, max_steps
    )


def whole_matrix_recomputation(ws, hs, start, max_steps):
    """The plain numpy way, as TAO's kmeans does it (every distance, every pass), with the same
    rules as full_recomputation; fast enough for tens of thousands of boxes."""
    ws, hs = np.asarray(ws), np.asarray(hs)
    cw, ch = np.array([c[0] for c in start]), np.array([c[1] for c in start])
    k = len(start)

    def distances():
        inter = np.minimum(ws[:, None], cw) * np.minimum(hs[:, None], ch)
        return 1.0 - inter / ((ws * hs)[:, None] + cw * ch - inter)

    def update(assign):
        for j in range(k):
            if (assign == j).any():
                cw[j], ch[j] = np.median(ws[assign == j]), np.median(hs[assign == j])
        assert all((assign == j).any() for j in range(k)), "this reference does not re-seed"

    assign = distances().argmin(axis=1)
    update(assign)
    steps = 1
    while steps < max_steps:
        d = distances()
        best = d.min(axis=1)
        new = np.where(d[np.arange(len(ws)), assign] == best, assign, d.argmin(axis=1))
        steps += 1
        if (new == assign).all():
            return list(zip(cw.tolist(), ch.tolist())), assign.tolist(), steps, True
        assign = new
        update(assign)
    return list(zip(cw.tolist(), ch.tolist())), assign.tolist(), steps, False


@pytest.mark.parametrize("case", range(6))
def test_bounded_assignment_equals_whole_matrix_recomputation_on_many_boxes(case):
    # Long runs on many boxes: the lazily kept bounds and their re-basing are exercised for
    # hundreds of passes (the small cases above converge in a few).
    rng = np.random.default_rng(case)
    n = [3000, 8000, 20000][case % 3]
    if case < 3:
        ws, hs = rng.uniform(0.005, 1.0, n), rng.uniform(0.005, 1.0, n)
    else:
        shapes = np.array(KNOWN)[rng.integers(0, len(KNOWN), n)]
        ws, hs = shapes[:, 0] * rng.lognormal(0, 0.4, n), shapes[:, 1] * rng.lognormal(0, 0.4, n)
    start = [(ws[i], hs[i]) for i in rng.choice(n, 9, replace=False)]
    result = _iterate(ws, hs, start, 10000)
    expected = whole_matrix_recomputation(ws, hs, start, 10000)
    assert (result.centres, result.assign.tolist(), result.steps, result.converged) == expected
    assert result.steps > 10


def test_large_input_uses_a_sample_start_and_stays_deterministic():
    boxes = blobs(KNOWN, per_blob=4000, spread=0.3, seed=5)  # 20k boxes: above the sample size
    first = kmedians_detail(boxes, 5, seed=3)
    assert first == kmedians_detail(boxes, 5, seed=3)
    assert first.converged
    for found, expected in zip(first.centres, sorted(KNOWN, key=lambda c: c[0] * c[1])):
        assert iou_distance(found, expected) < 0.05


def test_empty_cluster_is_reseeded_with_duplicate_boxes():
    boxes = [(0.1, 0.1)] * 10 + [(0.5, 0.4)] * 10 + [(0.2, 0.3)] * 10
    # All centres start on one box: every other cluster is empty and must be re-seeded.
    result = _iterate([b[0] for b in boxes], [b[1] for b in boxes], [(0.1, 0.1)] * 3, 10000)
    assert result.reseeded >= 2
    assert sorted(result.centres) == sorted(set(boxes))
    assert result.converged


def test_fewer_distinct_boxes_than_k_gives_finite_centres():
    boxes = [(0.1, 0.1)] * 10 + [(0.5, 0.5)] * 10
    result = kmedians_detail(boxes, 3, seed=0)
    assert result.converged
    assert len(result.centres) == 3
    assert set(result.centres) == {(0.1, 0.1), (0.5, 0.5)}
    assert sorted(set(result.assignments)) == [0, 1, 2]  # no cluster left empty


def test_fewer_boxes_than_k_is_an_input_error():
    with pytest.raises(InputError, match="need at least 9"):
        kmedians([(0.1, 0.2)] * 8, 9)


@pytest.mark.parametrize("box", [(0.0, 0.1), (0.1, -0.2), (float("nan"), 0.1), (float("inf"), 0.1)])
def test_boxes_without_positive_size_are_rejected(box):
    with pytest.raises(ValueError, match="box 1"):
        kmedians([(0.1, 0.1), box, (0.2, 0.2)], 2)


@pytest.mark.parametrize(("k", "max_steps"), [(0, 10), (True, 10), (2, 0)])
def test_bad_parameters(k, max_steps):
    with pytest.raises(ValueError):
        kmedians([(0.1, 0.1), (0.2, 0.2)], k, max_steps=max_steps)


def test_max_steps_stops_early():
    boxes = blobs(KNOWN, per_blob=200, spread=0.8, seed=4)
    result = kmedians_detail(boxes, 9, seed=0, max_steps=1)
    assert result.steps == 1
    assert not result.converged
    assert len(result.centres) == 9


# ---------------------------------------------------------------------------------------
# KITTI loading


def kitti_line(x1, y1, x2, y2, cls="lpd"):
    return f"{cls} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00\n"


def make_set(root: Path, images: dict[str, tuple[tuple[int, int], list[str]]], ext=".jpg"):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem, (size, lines) in images.items():
        if size is not None:
            Image.new("RGB", size, (90, 90, 90)).save(root / "images" / f"{stem}{ext}")
        (root / "labels" / f"{stem}.txt").write_text("".join(lines))
    return root / "labels", root / "images"


def test_boxes_are_normalised_by_each_image_size(tmp_path):
    labels, images = make_set(
        tmp_path,
        {
            "a": ((200, 100), [kitti_line(10, 10, 60, 30)]),  # 50x20 px
            "b": ((400, 50), [kitti_line(0, 0, 100, 25), "lpd 10 20 30 40\n", "\n"]),  # 100x25 px; short line ignored
            "c": (None, []),  # empty label file: its image is never needed
        },
    )
    boxes = load_kitti_boxes(labels, images, size_x=416, size_y=416)
    assert boxes == [(0.25, 0.2), (0.25, 0.5)]


def test_min_x_min_y_filter_in_network_pixels(tmp_path):
    labels, images = make_set(
        tmp_path,
        {"a": ((100, 100), [kitti_line(0, 0, 10, 50), kitti_line(0, 0, 50, 10), kitti_line(0, 0, 30, 30),
                            kitti_line(5, 5, 5, 40)])},
    )
    # At 200x200 the boxes measure 20x100, 100x20, 60x60 and 0x70 network pixels.
    assert load_kitti_boxes(labels, images, size_x=200, size_y=200) == [(0.1, 0.5), (0.5, 0.1), (0.3, 0.3)]
    assert load_kitti_boxes(labels, images, min_x=20, size_x=200, size_y=200) == [(0.5, 0.1), (0.3, 0.3)]
    assert load_kitti_boxes(labels, images, min_x=20, min_y=20, size_x=200, size_y=200) == [(0.3, 0.3)]


def test_several_directory_pairs_and_png(tmp_path):
    first = make_set(tmp_path / "one", {"x": ((100, 100), [kitti_line(0, 0, 10, 20)])})
    second = make_set(tmp_path / "two", {"x": ((50, 50), [kitti_line(0, 0, 10, 20)])}, ext=".png")
    boxes = load_kitti_boxes([first[0], second[0]], [first[1], second[1]], size_x=100, size_y=100)
    assert boxes == [(0.1, 0.2), (0.2, 0.4)]
    with pytest.raises(InputError, match="2 label directories but 1 image"):
        load_kitti_boxes([first[0], second[0]], [first[1]], size_x=100, size_y=100)


def test_missing_image_and_bad_numbers_name_the_file(tmp_path):
    labels, images = make_set(tmp_path, {"a": (None, [kitti_line(0, 0, 10, 10)])})
    with pytest.raises(InputError, match=r"a\.txt: no image named a\.\*"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)
    (labels / "a.txt").write_text("lpd 0 0 0 x 0 10 10 0 0 0 0 0 0 0\n")
    Image.new("RGB", (10, 10)).save(images / "a.jpg")
    with pytest.raises(InputError, match=r"a\.txt:1: box coordinates are not numbers"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)
    with pytest.raises(InputError, match="cannot list the label directory"):
        load_kitti_boxes(tmp_path / "nope", images, size_x=10, size_y=10)


# ---------------------------------------------------------------------------------------
# compute_anchors and the spec form


def test_compute_anchors_in_network_pixels(tmp_path):
    labels, images = make_set(
        tmp_path,
        {
            "a": ((200, 100), [kitti_line(0, 0, 50, 20)]),  # 0.25 x 0.2
            "b": ((300, 300), [kitti_line(0, 0, 100, 100)]),  # 1/3 x 1/3
            "c": ((100, 100), [kitti_line(0, 0, 10, 5)]),  # 0.1 x 0.05
        },
    )
    anchors = compute_anchors(labels, images, 416, 320, n=3, seed=5)
    assert anchors == [(41.6, 16.0), (104.0, 64.0), (138.67, 106.67)]
    assert format_anchor_shape(anchors) == "[(41.60, 16.00), (104.00, 64.00), (138.67, 106.67)]"


def test_compute_anchors_needs_n_boxes(tmp_path):
    labels, images = make_set(tmp_path, {"a": ((100, 100), [kitti_line(0, 0, 50, 50), kitti_line(0, 0, 2, 2)])})
    with pytest.raises(InputError, match=r"1 box\(es\) in .*min_x=5.*need at least 9"):
        compute_anchors(labels, images, 100, 100, min_x=5)


def test_compute_anchors_deterministic_and_grouped(tmp_path):
    rng = random.Random(0)
    images = {}
    for stem in range(30):
        lines = []
        for _ in range(5):
            w, h = rng.randint(5, 120), rng.randint(5, 90)
            x, y = rng.randint(0, 100), rng.randint(0, 100)
            lines.append(kitti_line(x, y, x + w, y + h))
        images[f"{stem:03d}"] = ((rng.choice([224, 320]), rng.choice([200, 240])), lines)
    labels, image_dir = make_set(tmp_path, images)
    anchors = compute_anchors(labels, image_dir, 320, 320, n=9, seed=1)
    assert anchors == compute_anchors(labels, image_dir, 320, 320, n=9, seed=1)
    assert all(round(v, 2) == v for a in anchors for v in a)
    groups = anchor_groups(anchors)
    assert list(groups) == ["small", "mid", "big"]
    assert groups["small"] + groups["mid"] + groups["big"] == anchors


def test_anchor_groups():
    anchors = [(float(i), float(i)) for i in range(6, 0, -1)]
    assert anchor_groups(anchors, ("mid", "big")) == {
        "mid": [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)],
        "big": [(4.0, 4.0), (5.0, 5.0), (6.0, 6.0)],
    }
    with pytest.raises(ValueError, match="7 anchors do not split into 3"):
        anchor_groups(anchors + [(7.0, 7.0)])
    with pytest.raises(ValueError):
        anchor_groups(anchors, ("big", "big"))


def test_format_anchor_shape():
    assert format_anchor_shape([(114.94, 60.67), (120, 80.5)]) == "[(114.94, 60.67), (120.00, 80.50)]"
    assert format_anchor_shape([]) == "[]"


@pytest.mark.parametrize("option, value, message", [
    ("--min-x", "nan", "nan is not a number of pixels"),  # once accepted: every box filtered out
    ("--min-y", "inf", "inf is not in the range 0<=x<=16384"),
    ("-x", "1" + "0" * 400, "is not in the range 1<=x<=16384"),  # once an OverflowError traceback
    ("--seed", "-1", "-1 is not in the range 0<=x<="),
])
def test_anchors_options_out_of_range_are_one_line_exit_2(tmp_path, option, value, message):
    from click.testing import CliRunner

    from tlt_pipe.cli import main

    labels, images = make_set(tmp_path, {"a": ((100, 100), [kitti_line(0, 0, 50, 50), kitti_line(0, 0, 20, 20)])})
    args = ["anchors", str(labels), str(images), "-x", "320", "-y", "320", "-n", "2", option, value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
