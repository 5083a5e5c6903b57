"""YOLO anchor shapes computed natively, the way ``yolo_v4 kmeans`` does, but reproducibly.

TAO's ``kmeans`` task clusters the (width, height) of every KITTI box, normalised by the size
of its image, with the distance ``1 - IoU`` of the two boxes placed on a common corner, and
moves each centre to the per-coordinate MEDIAN of its cluster (k-medians) until the
assignments stop changing. Its start is random and unseeded, and a cluster left empty
turns into NaN. Here the iteration is the same, and:

- the start is seeded: greedy k-means++ (boxes drawn with probability proportional to the
  square of their distance to the nearest centre already chosen, the best of a few kept)
  or, for more than 4096 boxes, the converged centres of a random quarter of the boxes,
  itself started the same way; one seed always gives the same anchors;
- a cluster left empty is re-seeded with the box farthest from its nearest centre;
- on an exact tie a box keeps its cluster (otherwise the lowest index wins), which makes
  duplicate boxes converge.

The assignment passes skip the boxes whose cluster provably cannot change (Hamerly's
bounds, see ``_iterate``): ``1 - IoU`` of corner-aligned boxes is the Jaccard distance of
two sets of the plane, a true metric, so the triangle inequality bounds how much a box's
distances can change when the centres move. The result is exactly that of recomputing
every distance on every pass (the unit tests compare the two). Pure Python, no numpy:
``bench/bench_anchors.py`` clusters 100k boxes into 9 anchors in one to two seconds.
"""

from __future__ import annotations

import math
import os
import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
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

# Above twice this many boxes, the start is the converged centres of a random sample of
# 1/_WARM_START_SHRINK of the boxes (at least this many). Tuned on the benchmark.
_WARM_START_SAMPLE = 2048
_WARM_START_SHRINK = 4
# A snapshot of bounds holding at most this many boxes is emptied (its boxes re-measured).
_FLUSH_BELOW = 64
# Resolution of the Z-order curve that numbers the boxes, in bits per coordinate.
_Z_BITS = 10
_Z_SPREAD = [sum(((x >> b) & 1) << (2 * b) for b in range(_Z_BITS)) for x in range(1 << _Z_BITS)]


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
    """The centres to start from: see the module docstring."""
    n = len(ws)
    size = max(_WARM_START_SAMPLE, n // _WARM_START_SHRINK, 4 * k)
    if n <= 2 * _WARM_START_SAMPLE or size >= n:
        return _spread_start(ws, hs, areas, k, rng)
    # Many boxes: converge on a random quarter of them first (itself started the same way).
    # Starting near the answer saves most of the expensive passes over all the boxes, and
    # shortens the tail of small corrections.
    pick = sorted(rng.sample(range(n), size))
    sample_w, sample_h = [ws[i] for i in pick], [hs[i] for i in pick]
    sample_areas = [areas[i] for i in pick]
    centres = _start(sample_w, sample_h, sample_areas, k, rng, max_steps)
    return _iterate(sample_w, sample_h, centres, max_steps).centres


def _measure(
    ws: list[float], hs: list[float], areas: list[float], centres: list[Box], current: list[int] | None
) -> tuple[list[int], list[float], list[int], list[float], list[float]]:
    """Distances from every given box to every centre, for k >= 2.

    Returns per box: the nearest centre, its distance, the second nearest centre (the
    "rival"), its distance, and the distance to the third nearest (infinite for k = 2). On
    an exact tie a box keeps its ``current`` centre, else takes the lowest index. Works one
    centre at a time over the whole batch, which is what pure Python does fastest.
    """
    rows = list(zip(*[_distances_to(ws, hs, areas, cw, ch) for cw, ch in centres]))
    ranked = list(map(sorted, rows))
    best = [r[0] for r in ranked]
    second = [r[1] for r in ranked]
    third = [r[2] for r in ranked] if len(centres) > 2 else [_INF] * len(rows)
    if current is None:
        nearest = [row.index(b) for row, b in zip(rows, best)]
    else:
        nearest = [a if row[a] == b else row.index(b) for row, a, b in zip(rows, current, best)]
    rival = [row.index(v) for row, v in zip(rows, second)]
    for index, (r, a) in enumerate(zip(rival, nearest)):
        if r == a:  # a tie between the two nearest: the rival is the other one
            rival[index] = rows[index].index(second[index], r + 1)
    return nearest, best, rival, second, third


def _locality_order(ws: list[float], hs: list[float]) -> list[int]:
    """Box indices along a Z-order curve over (log w, log h).

    Numbering boxes so that neighbours in shape are neighbours in memory matters in pure
    Python: the passes read the few boxes near a cluster border, and reading them in index
    order from lists built in that order is several times faster than hopping at random.
    """
    log_w = [math.log(w) for w in ws]
    log_h = [math.log(h) for h in hs]
    cells = (1 << _Z_BITS) - 1

    def quantise(values: list[float]) -> list[int]:
        low, high = min(values), max(values)
        scale = cells / (high - low) if high > low else 0.0
        return [int((v - low) * scale) for v in values]

    spread = _Z_SPREAD
    keys = [(spread[x] << 1) | spread[y] for x, y in zip(quantise(log_w), quantise(log_h))]
    return sorted(range(len(ws)), key=keys.__getitem__)


def _iterate(ws: list[float], hs: list[float], start: list[Box], max_steps: int) -> KMediansResult:
    """k-medians from the given centres until no box changes cluster (or ``max_steps`` passes).

    Same result as recomputing every distance on every pass, but only the boxes whose
    cluster might change are examined, using Hamerly's bounds grouped by when they were
    measured. When box i was last measured against the centres of snapshot t, its distance
    to its centre a was u and to every other centre at least L. By the triangle inequality,
    now
        distance to a      <= u + d(snapshot_t[a], centre[a])
        distance to j != a >= L - max over j != a of d(snapshot_t[j], centre[j])
    so its cluster cannot change while L - u exceeds the sum of these two drifts. The boxes
    measured against one snapshot and assigned to one cluster share both drifts: they sit in
    a "lane" sorted by L - u, and a pass takes only the prefix whose slack is used up, then
    files the boxes it examined in the lanes of a new snapshot. Measuring the drift from the
    snapshot (instead of summing the moves of every pass) keeps the bounds tight while the
    centres wander back and forth in the long tail of small corrections.

    A box taken from a lane is first checked cheaply: the exact distances to its own centre
    and to its rival (the second nearest when last measured), and a lower bound for all the
    other centres (the third distance, less the drift). Only if that fails is it measured
    against every centre.
    """
    n, k = len(ws), len(start)
    # Work on the boxes renumbered along a Z-order curve, as fresh float objects allocated in
    # that order; original[p] is the input index of box p (it breaks ties, as in the input).
    original = _locality_order(ws, hs)
    ws = [ws[i] + 0.0 for i in original]
    hs = [hs[i] + 0.0 for i in original]
    areas = [w * h for w, h in zip(ws, hs)]
    centres = list(start)
    if k == 1:
        # Nothing to assign: the second pass finds that nothing changes.
        single = [0] * n
        centres[0] = _Clusters(ws, hs, single, 1).centre(0)
        steps = min(2, max_steps)
        return KMediansResult(centres=centres, assignments=single, steps=steps, converged=steps == 2, reseeded=0)
    assign, nearest, rival, second, beyond = _measure(ws, hs, areas, centres, None)
    clusters = _Clusters(ws, hs, assign, k)
    # A snapshot: (id, centres, lanes); a lane per cluster:
    # [slacks L - u in ascending order, box ids, how many were taken].
    # beyond[i]: lower bound on the distance to every centre but its own and its rival,
    # relative to the snapshot that holds the box.
    snapshots: list[tuple[int, list[Box], list[list]]] = []
    where = [0] * n  # the snapshot whose lanes hold the box (older entries are stale)
    pending: list[int] = []  # re-seeded boxes, to measure at the next pass
    reseeded = 0

    def file_snapshot(ident: int, fresh: list[tuple[list[float], list[int]]]) -> None:
        lanes = []
        for lane_slack, lane_ids in fresh:
            order = sorted(range(len(lane_slack)), key=lane_slack.__getitem__)
            lanes.append([[lane_slack[o] for o in order], [lane_ids[o] for o in order], 0])
            for i in lane_ids:
                where[i] = ident
        snapshots.append((ident, list(centres), lanes))

    def split_by_cluster(fresh, ids: list[int], slack: list[float], cluster: list[int]) -> None:
        for a, (lane_slack, lane_ids) in enumerate(fresh):
            mask = [c == a for c in cluster]
            lane_slack.extend(compress(slack, mask))
            lane_ids.extend(compress(ids, mask))

    fresh0: list[tuple[list[float], list[int]]] = [([], []) for _ in range(k)]
    split_by_cluster(fresh0, list(range(n)), list(map(sub, second, nearest)), assign)
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
                (i for i in range(n) if clusters.size(assign[i]) > 1), key=lambda i: (exact[i], -original[i])
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
        cws = [cw for cw, _ in centres]
        chs = [ch for _, ch in centres]
        # For each centre, the distance to the nearest other one: no other centre is nearer
        # to a box than that, less the box's distance to its own centre.
        gap = [
            min((_distance(cw, ch, ca, ow, oh, oa) for o, ((ow, oh), oa) in enumerate(zip(centres, cas)) if o != j),
                default=_INF)
            for j, ((cw, ch), ca) in enumerate(zip(centres, cas))
        ]
        fresh: list[tuple[list[float], list[int]]] = [([], []) for _ in range(k)]
        to_measure: list[int] = []
        live = []
        # Take from every lane the boxes whose slack is used up, pooled per cluster with the
        # drift of the other centres since their snapshot.
        pool_ids: list[list[int]] = [[] for _ in range(k)]
        pool_others: list[list[float]] = [[] for _ in range(k)]
        for snapshot in snapshots:
            ident, old, lanes = snapshot
            drift = [_distance(ow, oh, ow * oh, cw, ch, ca) for (ow, oh), (cw, ch), ca in zip(old, centres, cas)]
            biggest = max(range(k), key=drift.__getitem__)
            runner_up = max((d for j, d in enumerate(drift) if j != biggest), default=0.0)
            # A snapshot with few boxes left costs more to track than to empty.
            flush = sum(len(lane[1]) - lane[2] for lane in lanes) <= _FLUSH_BELOW
            alive = False
            for a, lane in enumerate(lanes):
                lane_slack, lane_ids, taken = lane
                if taken == len(lane_ids):
                    continue
                others = runner_up if a == biggest else drift[biggest]
                cut = len(lane_ids) if flush else bisect_right(lane_slack, drift[a] + others + eps, taken)
                lane[2] = cut
                alive = alive or cut < len(lane_ids)
                if cut == taken:
                    continue
                batch = lane_ids[taken:cut]
                if reseeded:
                    batch = [i for i in batch if where[i] == ident]
                pool_ids[a].extend(batch)
                pool_others[a].extend(repeat(others, len(batch)))
            if alive:
                live.append(snapshot)
        snapshots[:] = live

        # The cheap test: exact distances to its own centre and to its rival, the bound for
        # the rest, and the triangle inequality through the centre nearest to its own.
        for a in range(k):
            batch = pool_ids[a]
            if not batch:
                continue
            order = sorted(range(len(batch)), key=batch.__getitem__)  # read boxes in memory order
            batch = [batch[o] for o in order]
            others_b = pool_others[a]
            others_b = [others_b[o] for o in order]
            cw, ch = centres[a]
            ca = cas[a]
            near = gap[a]
            bw = [ws[i] for i in batch]
            bh = [hs[i] for i in batch]
            ba = [areas[i] for i in batch]
            us = [
                1.0 - (inter := (w if w < cw else cw) * (h if h < ch else ch)) / (ar + ca - inter)
                for w, h, ar in zip(bw, bh, ba)
            ]
            to_rival = [
                1.0 - (inter := (w if w < (rw := cws[j]) else rw) * (h if h < (rh := chs[j]) else rh)) / (ar + cas[j] - inter)
                for w, h, ar, j in zip(bw, bh, ba, [rival[i] for i in batch])
            ]
            rest = [beyond[i] - o for i, o in zip(batch, others_b)]
            lower = [
                (lo if lo > near - u else near - u)
                for u, lo in zip(us, [r if r < b else b for r, b in zip(to_rival, rest)])
            ]
            stays = [u + eps < lo for u, lo in zip(us, lower)]
            kept = list(compress(batch, stays))
            for i, b in zip(kept, compress(rest, stays)):
                beyond[i] = b
            lane_slack_new, lane_ids_new = fresh[a]
            lane_ids_new.extend(kept)
            lane_slack_new.extend(map(sub, compress(lower, stays), compress(us, stays)))
            to_measure.extend(compress(batch, map(not_, stays)))
        to_measure.extend(pending)
        pending.clear()

        # Measure the rest against every centre.
        moves: list[tuple[int, int, int]] = []
        if to_measure:
            to_measure.sort()
            current = [assign[i] for i in to_measure]
            new, best, rivals, second, third = _measure(
                [ws[i] for i in to_measure], [hs[i] for i in to_measure], [areas[i] for i in to_measure],
                centres, current,
            )
            for i, r, t in zip(to_measure, rivals, third):
                rival[i] = r
                beyond[i] = t
            split_by_cluster(fresh, to_measure, list(map(sub, second, best)), new)
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

    in_input_order = [0] * n
    for p, i in enumerate(original):
        in_input_order[i] = assign[p]
    return KMediansResult(
        centres=centres, assignments=in_input_order, steps=steps, converged=converged, reseeded=reseeded
    )


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
