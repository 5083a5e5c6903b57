"""YOLO anchor shapes computed natively, the way ``yolo_v4 kmeans`` does, but reproducibly.

TAO's ``kmeans`` task clusters the (width, height) of every KITTI box, normalised by the size
of its image, with the distance ``1 - IoU`` of the two boxes placed on a common corner, and
moves each centre to the per-coordinate MEDIAN of its cluster (k-medians) until the
assignments stop changing. Its start is random and unseeded, and a cluster left empty
turns into NaN. Here the iteration is the same, and:

- the start is seeded: greedy k-means++ (boxes drawn with probability proportional to the
  square of their distance to the nearest centre already chosen, the best of a few kept)
  or, for large inputs, the converged centres of a seeded sample of the boxes; one seed
  always gives the same anchors;
- a cluster left empty is re-seeded with the box farthest from its nearest centre;
- on an exact tie a box keeps its cluster (otherwise the lowest index wins), which makes
  duplicate boxes converge.

The assignment step skips the boxes whose cluster provably cannot change (Hamerly's
bounds): ``1 - IoU`` of corner-aligned boxes is the Jaccard distance of two sets of the
plane, a true metric, so the triangle inequality bounds how much a box's distances can
change when the centres move. The result is exactly that of recomputing every distance.
Pure Python; ``bench/bench_anchors.py`` measures 100k boxes.
"""

from __future__ import annotations

import math
import os
import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import not_, sub
from pathlib import Path

from tlt_pipe.errors import InputError

__all__ = [
    "IMAGE_EXTENSIONS",
    "KMediansResult",
    "anchor_groups",
    "compute_anchors",
    "format_anchor_shape",
    "iter_kitti_boxes",
    "kmedians",
    "kmedians_detail",
    "load_kitti_boxes",
]

Box = tuple[float, float]

# Slack for the bound tests: a box is skipped only when its cluster wins by more than this,
# so rounding in the bounds can never hide a change of cluster.
_EPS = 1e-9
_INF = math.inf

# Above this many boxes the start is the converged centres of a sample of this size.
_WARM_START_SAMPLE = 8192
# A snapshot of bounds holding at most this many boxes is emptied (its boxes re-measured).
_FLUSH_BELOW = 64


def _distance(w: float, h: float, area: float, cw: float, ch: float, carea: float) -> float:
    """1 - IoU of two boxes sharing a corner. Every distance in this module uses this formula."""
    inter = (w if w < cw else cw) * (h if h < ch else ch)
    return 1.0 - inter / (area + carea - inter)


def _distances_to(ws: list[float], hs: list[float], areas: list[float], cw: float, ch: float) -> list[float]:
    """``_distance`` from every box to one centre (inlined: this is the hot loop)."""
    ca = cw * ch
    return [
        1.0 - (inter := (w if w < cw else cw) * (h if h < ch else ch)) / (a + ca - inter)
        for w, h, a in zip(ws, hs, areas)
    ]


def _median(values: list[float]) -> float:
    """Median of an already sorted list (the mean of the middle two for an even count)."""
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2.0


@dataclass(frozen=True)
class KMediansResult:
    """Centres sorted by area (ascending), with the assignment of every input box to them.

    ``steps`` counts the assignment passes over all the boxes (the first one included);
    ``converged`` is False when ``max_steps`` stopped the iteration while boxes were still
    changing cluster. ``reseeded`` counts the empty clusters that were re-seeded.
    """

    centres: list[Box]
    assignments: list[int]
    steps: int
    converged: bool
    reseeded: int


class _Clusters:
    """Per-cluster sorted widths and heights, kept up to date as boxes move, and the medians."""

    def __init__(self, ws: list[float], hs: list[float], assignments: list[int], k: int):
        self.ws = ws
        self.hs = hs
        self.k = k
        self.sorted_w: list[list[float]] = [[] for _ in range(k)]
        self.sorted_h: list[list[float]] = [[] for _ in range(k)]
        self.rebuild(assignments, range(k))

    def rebuild(self, assignments: list[int], clusters: Iterable[int]) -> None:
        members: list[list[int]] = [[] for _ in range(self.k)]
        for i, j in enumerate(assignments):
            members[j].append(i)
        ws, hs = self.ws, self.hs
        for j in clusters:
            self.sorted_w[j] = sorted([ws[i] for i in members[j]])
            self.sorted_h[j] = sorted([hs[i] for i in members[j]])

    def move(self, i: int, old: int, new: int) -> None:
        for lists, value in ((self.sorted_w, self.ws[i]), (self.sorted_h, self.hs[i])):
            source = lists[old]
            del source[bisect_left(source, value)]
            insort(lists[new], value)

    def size(self, j: int) -> int:
        return len(self.sorted_w[j])

    def centre(self, j: int) -> Box:
        return (_median(self.sorted_w[j]), _median(self.sorted_h[j]))


def _check_boxes(boxes: Sequence[Box], k: int) -> tuple[list[float], list[float]]:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    ws: list[float] = []
    hs: list[float] = []
    for index, (w, h) in enumerate(boxes):
        w, h = float(w), float(h)
        if not (0.0 < w < _INF and 0.0 < h < _INF):
            raise ValueError(f"box {index} has no positive finite size: ({w}, {h})")
        ws.append(w)
        hs.append(h)
    if len(ws) < k:
        raise InputError(f"{len(ws)} box(es) to cluster into {k} anchors: need at least {k} boxes")
    return ws, hs


def _spread_start(ws: list[float], hs: list[float], areas: list[float], k: int, rng: random.Random) -> list[Box]:
    """k boxes chosen by greedy k-means++: the first drawn uniformly; for each next one a few
    candidates are drawn with probability proportional to the square of their distance to
    the nearest box already chosen, and the one that brings the boxes closest is kept. A box
    lying on a chosen one is drawn only when every box does (duplicates)."""
    n = len(ws)
    first = rng.randrange(n)
    centres = [(ws[first], hs[first])]
    nearest = _distances_to(ws, hs, areas, ws[first], hs[first])
    tries = 2 + int(math.log(k))
    for _ in range(1, k):
        cumulative = list(accumulate(d * d for d in nearest))
        total = cumulative[-1]
        if total <= 0.0:
            index = rng.randrange(n)
            centres.append((ws[index], hs[index]))
            continue
        best: tuple[float, int, list[float]] | None = None
        for _ in range(tries):
            index = min(bisect_right(cumulative, rng.random() * total), n - 1)
            closer = [d if d < near else near for d, near in zip(_distances_to(ws, hs, areas, ws[index], hs[index]), nearest)]
            potential = math.fsum(d * d for d in closer)
            if best is None or potential < best[0]:
                best = (potential, index, closer)
        assert best is not None
        _, index, nearest = best
        centres.append((ws[index], hs[index]))
    return centres


def _start(ws: list[float], hs: list[float], areas: list[float], k: int, rng: random.Random, max_steps: int) -> list[Box]:
    n = len(ws)
    if n <= 2 * _WARM_START_SAMPLE:
        return _spread_start(ws, hs, areas, k, rng)
    # Many boxes: converge on a sample first. Starting near the answer saves most of the
    # expensive early passes, where the centres still move a lot.
    pick = sorted(rng.sample(range(n), _WARM_START_SAMPLE))
    sample_w, sample_h = [ws[i] for i in pick], [hs[i] for i in pick]
    sample_areas = [areas[i] for i in pick]
    centres = _spread_start(sample_w, sample_h, sample_areas, k, rng)
    return _iterate(sample_w, sample_h, centres, max_steps).centres


def _measure(
    ws: list[float], hs: list[float], areas: list[float], centres: list[Box], current: list[int] | None
) -> tuple[list[int], list[float], list[float]]:
    """Distances from every given box to every centre: nearest centre, its distance, the second.

    On an exact tie a box keeps its ``current`` centre, else takes the lowest index. Works
    one centre at a time over the whole batch, which is what pure Python does fastest.
    """
    rows = list(zip(*[_distances_to(ws, hs, areas, cw, ch) for cw, ch in centres]))
    ranked = list(map(sorted, rows))
    best = [r[0] for r in ranked]
    second = [r[1] if len(r) > 1 else _INF for r in ranked]
    if current is None:
        nearest = [row.index(b) for row, b in zip(rows, best)]
    else:
        nearest = [a if row[a] == b else row.index(b) for row, a, b in zip(rows, current, best)]
    return nearest, best, second


def _iterate(ws: list[float], hs: list[float], start: list[Box], max_steps: int) -> KMediansResult:
    """k-medians from the given centres until no box changes cluster (or ``max_steps`` passes).

    Hamerly's bounds, grouped by when they were measured. When box i was last measured
    against the centres of snapshot t, its distance to its centre a was u and to every other
    centre at least L. By the triangle inequality, now
        distance to a      <= u + d(snapshot_t[a], centre[a])
        distance to j != a >= L - max over j != a of d(snapshot_t[j], centre[j])
    so its cluster cannot change while L - u exceeds the sum of these two drifts. The boxes
    measured against one snapshot and assigned to one cluster share both drifts: they sit in
    a "lane" sorted by L - u, and a pass takes only the prefix whose slack is used up, then
    files the boxes it examined in the lanes of a new snapshot. Measuring the drift from the
    snapshot (instead of summing the moves of every pass) keeps the bounds tight while the
    centres wander back and forth in the long tail of small corrections.
    """
    n, k = len(ws), len(start)
    areas = [w * h for w, h in zip(ws, hs)]
    centres = list(start)
    assign, nearest, second = _measure(ws, hs, areas, centres, None)
    clusters = _Clusters(ws, hs, assign, k)
    # A snapshot: (id, centres, lanes); a lane per cluster:
    # [slacks L - u in ascending order, box ids, lower bounds L, how many were taken].
    snapshots: list[tuple[int, list[Box], list[list]]] = []
    where = [0] * n  # the snapshot whose lanes hold the box (older entries are stale)
    pending: list[int] = []  # re-seeded boxes, to measure at the next pass
    reseeded = 0

    def file_snapshot(ident: int, fresh: list[tuple[list[float], list[int], list[float]]]) -> None:
        lanes = []
        for lane_slack, lane_ids, lane_lower in fresh:
            order = sorted(range(len(lane_slack)), key=lane_slack.__getitem__)
            lanes.append([[lane_slack[o] for o in order], [lane_ids[o] for o in order], [lane_lower[o] for o in order], 0])
            for i in lane_ids:
                where[i] = ident
        snapshots.append((ident, list(centres), lanes))

    def split_by_cluster(fresh, ids: list[int], slack: list[float], lower: list[float], cluster: list[int]) -> None:
        for a, (lane_slack, lane_ids, lane_lower) in enumerate(fresh):
            mask = [c == a for c in cluster]
            lane_slack.extend(compress(slack, mask))
            lane_ids.extend(compress(ids, mask))
            lane_lower.extend(compress(lower, mask))

    fresh0: list[tuple[list[float], list[int], list[float]]] = [([], [], []) for _ in range(k)]
    split_by_cluster(fresh0, list(range(n)), list(map(sub, second, nearest)), second, assign)
    file_snapshot(0, fresh0)
    del nearest, second, fresh0

    def update_centres(changed: Iterable[int]) -> None:
        nonlocal reseeded
        for j in changed:
            if clusters.size(j):
                centres[j] = clusters.centre(j)
        empty = [j for j in range(k) if not clusters.size(j)]
        if not empty:
            return
        # Re-seed each empty cluster, in turn, with the box farthest from its nearest centre
        # (the re-seeded ones included), taken from a cluster that keeps at least one box.
        cas = [cw * ch for cw, ch in centres]
        exact = [_distance(ws[i], hs[i], areas[i], *centres[a], cas[a]) for i, a in enumerate(assign)]
        donors = set()
        for j in empty:
            i = max(
                (i for i in range(n) if clusters.size(assign[i]) > 1), key=lambda i: (exact[i], -i)
            )
            donor = assign[i]
            clusters.move(i, donor, j)
            assign[i] = j
            where[i] = -1
            pending.append(i)
            donors.add(donor)
            centres[j] = (ws[i], hs[i])
            exact = [e if e < d else d for e, d in zip(exact, _distances_to(ws, hs, areas, ws[i], hs[i]))]
            reseeded += 1
        for donor in donors:
            if clusters.size(donor):
                centres[donor] = clusters.centre(donor)

    update_centres(range(k))
    steps = 1
    converged = False
    eps = _EPS
    while steps < max_steps:
        cas = [cw * ch for cw, ch in centres]
        # Twice the distance beyond which no other centre can be nearer: a box closer than
        # half the distance from its centre to the nearest other centre stays.
        gap = [
            min((_distance(cw, ch, ca, ow, oh, oa) for o, ((ow, oh), oa) in enumerate(zip(centres, cas)) if o != j),
                default=_INF)
            for j, ((cw, ch), ca) in enumerate(zip(centres, cas))
        ]
        fresh: list[tuple[list[float], list[int], list[float]]] = [([], [], []) for _ in range(k)]
        to_measure: list[int] = []
        live = []
        for snapshot in snapshots:
            ident, old, lanes = snapshot
            drift = [_distance(ow, oh, ow * oh, cw, ch, ca) for (ow, oh), (cw, ch), ca in zip(old, centres, cas)]
            biggest = max(range(k), key=drift.__getitem__)
            runner_up = max((d for j, d in enumerate(drift) if j != biggest), default=0.0)
            # A snapshot with few boxes left costs more to track than to empty.
            flush = sum(len(lane[1]) - lane[3] for lane in lanes) <= _FLUSH_BELOW
            alive = False
            for a, lane in enumerate(lanes):
                lane_slack, lane_ids, lane_lower, taken = lane
                if taken == len(lane_ids):
                    continue
                others = runner_up if a == biggest else drift[biggest]
                cut = len(lane_ids) if flush else bisect_right(lane_slack, drift[a] + others + eps, taken)
                lane[3] = cut
                alive = alive or cut < len(lane_ids)
                if cut == taken:
                    continue
                batch = lane_ids[taken:cut]
                lower = lane_lower[taken:cut]
                if reseeded:
                    valid = [where[i] == ident for i in batch]
                    batch, lower = list(compress(batch, valid)), list(compress(lower, valid))
                # Cheap test first: the exact distance to its own centre against the lower
                # bound, itself raised by the triangle inequality through the nearest centre.
                cw, ch = centres[a]
                ca = cas[a]
                near = gap[a]
                us = [
                    1.0 - (inter := (ws[i] if ws[i] < cw else cw) * (hs[i] if hs[i] < ch else ch)) / (areas[i] + ca - inter)
                    for i in batch
                ]
                lower = [(lo - others) if lo - others > near - u else near - u for lo, u in zip(lower, us)]
                stays = [u + eps < lo for u, lo in zip(us, lower)]
                lane_slack_new, lane_ids_new, lane_lower_new = fresh[a]
                lane_ids_new.extend(compress(batch, stays))
                kept_lower = list(compress(lower, stays))
                lane_lower_new.extend(kept_lower)
                lane_slack_new.extend(map(sub, kept_lower, compress(us, stays)))
                to_measure.extend(compress(batch, map(not_, stays)))
            if alive:
                live.append(snapshot)
        snapshots[:] = live
        to_measure.extend(pending)
        pending.clear()

        # Measure the rest against every centre.
        moves: list[tuple[int, int, int]] = []
        if to_measure:
            current = [assign[i] for i in to_measure]
            new, best, second = _measure(
                [ws[i] for i in to_measure], [hs[i] for i in to_measure], [areas[i] for i in to_measure],
                centres, current,
            )
            split_by_cluster(fresh, to_measure, list(map(sub, second, best)), second, new)
            moves = [(i, a, b) for i, a, b in zip(to_measure, current, new) if a != b]
            for i, _, b in moves:
                assign[i] = b
        file_snapshot(steps, fresh)
        steps += 1
        if not moves:
            converged = True
            break

        touched = {old for _, old, _ in moves} | {new for _, _, new in moves}
        if len(moves) * 8 > n:
            clusters.rebuild(assign, touched)
        else:
            for i, old, new in moves:
                clusters.move(i, old, new)
        update_centres(sorted(touched))

    return KMediansResult(centres=centres, assignments=assign, steps=steps, converged=converged, reseeded=reseeded)


def kmedians_detail(
    boxes: Sequence[Box], k: int, *, seed: int = 0, max_steps: int = 10000
) -> KMediansResult:
    """IoU k-medians over normalised (w, h) boxes; see the module docstring.

    Deterministic for a given seed and box order. Raises InputError with fewer boxes than
    ``k`` and ValueError for a box without a positive size or a bad ``k``/``max_steps``.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, not {max_steps!r}")
    ws, hs = _check_boxes(boxes, k)
    rng = random.Random(seed)
    areas = [w * h for w, h in zip(ws, hs)]
    result = _iterate(ws, hs, _start(ws, hs, areas, k, rng, max_steps), max_steps)
    centres = result.centres
    order = sorted(range(k), key=lambda j: (centres[j][0] * centres[j][1], centres[j]))
    rank = [0] * k
    for r, j in enumerate(order):
        rank[j] = r
    return KMediansResult(
        centres=[centres[j] for j in order],
        assignments=[rank[a] for a in result.assignments],
        steps=result.steps,
        converged=result.converged,
        reseeded=result.reseeded,
    )


def kmedians(boxes: Sequence[Box], k: int, *, seed: int = 0, max_steps: int = 10000) -> list[Box]:
    """The k IoU k-medians centres of normalised (w, h) boxes, sorted by area (ascending)."""
    return kmedians_detail(boxes, k, seed=seed, max_steps=max_steps).centres


# ---------------------------------------------------------------------------------------
# KITTI labels

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})

PathLike = str | os.PathLike[str]


def _as_dirs(value: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value]


def _image_index(image_dir: Path) -> dict[str, Path]:
    """stem -> image path for the images of one directory (first extension in name order)."""
    index: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(image_dir), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"{image_dir}: cannot list the image directory ({exc.strerror or exc})") from None
    for entry in entries:
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() in IMAGE_EXTENSIONS and entry.is_file():
            index.setdefault(stem, Path(entry.path))
    return index


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the header only
            return image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot read the image size ({exc})") from None


def iter_kitti_boxes(
    label_dirs: PathLike | Sequence[PathLike],
    image_dirs: PathLike | Sequence[PathLike],
    *,
    min_x: float = 0,
    min_y: float = 0,
    size_x: float,
    size_y: float,
) -> Iterator[Box]:
    """Stream the normalised (w, h) of the KITTI boxes; see ``load_kitti_boxes``."""
    labels, images = _as_dirs(label_dirs), _as_dirs(image_dirs)
    if len(labels) != len(images):
        raise InputError(f"{len(labels)} label directories but {len(images)} image directories: pair them one to one")
    if size_x <= 0 or size_y <= 0:
        raise ValueError(f"network size must be positive, not {size_x}x{size_y}")
    keep_w, keep_h = min_x / size_x, min_y / size_y
    for label_dir, image_dir in zip(labels, images):
        index = _image_index(image_dir)
        try:
            label_files = sorted(
                (e for e in os.scandir(label_dir) if e.name.endswith(".txt") and e.is_file()), key=lambda e: e.name
            )
        except OSError as exc:
            raise InputError(f"{label_dir}: cannot list the label directory ({exc.strerror or exc})") from None
        for entry in label_files:
            size: tuple[int, int] | None = None
            with open(entry.path, encoding="utf-8", errors="replace") as handle:
                for lineno, line in enumerate(handle, start=1):
                    fields = line.split()
                    if len(fields) < 15:
                        continue
                    try:
                        x1, y1, x2, y2 = (float(v) for v in fields[4:8])
                    except ValueError:
                        raise InputError(f"{entry.path}:{lineno}: box coordinates are not numbers: {line.strip()!r}") from None
                    if size is None:
                        stem = entry.name[: -len(".txt")]
                        image = index.get(stem)
                        if image is None:
                            raise InputError(f"{entry.path}: no image named {stem}.* in {image_dir}")
                        size = _image_size(image)
                    w, h = (x2 - x1) / size[0], (y2 - y1) / size[1]
                    if w > keep_w and h > keep_h:
                        yield (w, h)


def load_kitti_boxes(
    label_dirs: PathLike | Sequence[PathLike],
    image_dirs: PathLike | Sequence[PathLike],
    *,
    min_x: float = 0,
    min_y: float = 0,
    size_x: float,
    size_y: float,
) -> list[Box]:
    """The (w, h) of every KITTI box, as fractions of the size of its own image.

    ``label_dirs[i]`` pairs with ``image_dirs[i]`` (a single path is accepted for either);
    an image is found by the stem of its label file. Lines with fewer than 15 fields are
    ignored, as TAO does. A box is kept when ``w > min_x / size_x`` and ``h > min_y / size_y``
    (``min_x``/``min_y`` in pixels of the ``size_x`` x ``size_y`` network input), so boxes
    without a positive size are always dropped. Files are read in name order, one at a time;
    an image header is only read for label files that hold a box.

    Raises InputError naming the file for an unreadable directory or image, a missing image
    or non-numeric coordinates.
    """
    return list(iter_kitti_boxes(label_dirs, image_dirs, min_x=min_x, min_y=min_y, size_x=size_x, size_y=size_y))


# ---------------------------------------------------------------------------------------
# Anchors for the spec


def compute_anchors(
    label_dirs: PathLike | Sequence[PathLike],
    image_dirs: PathLike | Sequence[PathLike],
    width: int,
    height: int,
    n: int = 9,
    seed: int = 0,
    min_x: float = 0,
    min_y: float = 0,
    max_steps: int = 10000,
) -> list[Box]:
    """``n`` anchors in pixels of the ``width`` x ``height`` network input, as ``yolo_v4 kmeans``.

    Rounded to 2 decimals and sorted by area, smallest first. Raises InputError when fewer
    than ``n`` boxes are left after filtering.
    """
    boxes = load_kitti_boxes(label_dirs, image_dirs, min_x=min_x, min_y=min_y, size_x=width, size_y=height)
    if len(boxes) < n:
        raise InputError(
            f"{len(boxes)} box(es) in {', '.join(str(d) for d in _as_dirs(label_dirs))} "
            f"(after min_x={min_x}, min_y={min_y}): need at least {n} to compute {n} anchors"
        )
    centres = kmedians(boxes, n, seed=seed, max_steps=max_steps)
    anchors = [(round(w * width, 2), round(h * height, 2)) for w, h in centres]
    return sorted(anchors, key=lambda a: (a[0] * a[1], a))


def anchor_groups(
    anchors: Sequence[Box], groups: Sequence[str] = ("small", "mid", "big")
) -> dict[str, list[Box]]:
    """Split anchors sorted by area into equal consecutive groups, smallest first.

    YOLOv3/v4 use ``("small", "mid", "big")`` (n=9: 3 each); YOLOv4-tiny uses
    ``("mid", "big")`` (n=6). Raises ValueError when the anchors do not split evenly.
    """
    if not groups:
        raise ValueError("at least one anchor group is needed")
    if len(set(groups)) != len(groups):
        raise ValueError(f"anchor group names repeat: {list(groups)}")
    per_group, rest = divmod(len(anchors), len(groups))
    if rest or not per_group:
        raise ValueError(f"{len(anchors)} anchors do not split into {len(groups)} equal groups")
    ordered = sorted(anchors, key=lambda a: (a[0] * a[1], tuple(a)))
    return {name: [tuple(a) for a in ordered[g * per_group : (g + 1) * per_group]] for g, name in enumerate(groups)}


def format_anchor_shape(anchors: Iterable[Box]) -> str:
    """The spec's string form of an anchor list: ``"[(114.94, 60.67), (120.00, 80.50)]"``."""
    return "[" + ", ".join(f"({w:.2f}, {h:.2f})" for w, h in anchors) + "]"
