"""YOLO anchor shapes computed natively, the way ``yolo_v4 kmeans`` does, but reproducibly.

TAO's ``kmeans`` task clusters the (width, height) of every KITTI box, normalised by the size
of its image, with the distance ``1 - IoU`` of the two boxes placed on a common corner, and
moves each centre to the per-coordinate MEDIAN of its cluster (k-medians) until the
assignments stop changing. Its start is random and unseeded, and a cluster left empty
turns into NaN. Here the iteration is the same, and:

- the start is seeded: greedy k-means++ (boxes drawn with probability proportional to the
  square of their distance to the nearest centre already chosen, the best of a few kept)
  or, for more than 2 x ``_WARM_START_SAMPLE`` boxes, the converged centres of a random
  sample of the boxes, itself started the same way; one seed always gives the same anchors;
- a cluster left empty is re-seeded with the box farthest from its nearest centre;
- on an exact tie a box keeps its cluster (otherwise the lowest index wins), which makes
  duplicate boxes converge.

Every pass is whole-array numpy work, and skips the boxes whose cluster provably cannot
change (Hamerly's bounds, see ``_iterate``): ``1 - IoU`` of corner-aligned boxes is the
Jaccard distance of two sets of the plane, a true metric, so the triangle inequality bounds
how much a box's distances can change when the centres move. The result is exactly that of
recomputing every distance on every pass (the unit tests compare the two). The boxes are
read by tlt_pipe.label_boxes; ``bench/bench_anchors.py`` times the whole command.
"""

from __future__ import annotations

import math
import os
import random
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tlt_pipe.errors import InputError
from tlt_pipe.label_boxes import as_dirs, kitti_box_arrays

__all__ = [
    "KMediansResult",
    "anchor_groups",
    "compute_anchors",
    "format_anchor_shape",
    "kmedians",
    "kmedians_detail",
]

Box = tuple[float, float]
PathLike = str | os.PathLike[str]

# Slack for the bound tests: a box is skipped only when its cluster wins by more than this,
# so rounding in the bounds can never hide a change of cluster.
_EPS = 1e-9

# Above twice this many boxes, the start is the converged centres of a random sample of
# 1/_WARM_START_SHRINK of the boxes (at least this many). Tuned on the benchmark.
_WARM_START_SAMPLE = 2048
_WARM_START_SHRINK = 2


def _distances(ws: np.ndarray, hs: np.ndarray, areas: np.ndarray, cws: np.ndarray, chs: np.ndarray) -> np.ndarray:
    """1 - IoU from every box (rows) to every centre (columns)."""
    inter = np.minimum(ws[:, None], cws) * np.minimum(hs[:, None], chs)
    return 1.0 - inter / (areas[:, None] + cws * chs - inter)


def _distances_to(ws: np.ndarray, hs: np.ndarray, areas: np.ndarray, cw: float | np.ndarray,
                  ch: float | np.ndarray) -> np.ndarray:
    """1 - IoU from every box to one centre, or from box i to centre (cw[i], ch[i])."""
    inter = np.minimum(ws, cw) * np.minimum(hs, ch)
    return 1.0 - inter / (areas + cw * ch - inter)


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


class _Outcome(NamedTuple):
    """What an iteration ends with: the centres in cluster order and each box's cluster."""

    centres: list[Box]
    assign: np.ndarray
    steps: int
    converged: bool
    reseeded: int


def _check_boxes(boxes: Sequence[Box], k: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    array = np.array(boxes, dtype=np.float64).reshape(-1, 2)
    ws, hs = array[:, 0].copy(), array[:, 1].copy()
    good = np.isfinite(ws) & np.isfinite(hs) & (ws > 0) & (hs > 0)
    if not good.all():
        index = int(np.argmin(good))
        raise ValueError(f"box {index} has no positive finite size: ({ws[index]}, {hs[index]})")
    if len(ws) < k:
        raise InputError(f"{len(ws)} box(es) to cluster into {k} anchors: need at least {k} boxes")
    return ws, hs


def _spread_start(ws: np.ndarray, hs: np.ndarray, areas: np.ndarray, k: int, rng: random.Random) -> list[Box]:
    """k boxes chosen by greedy k-means++: the first drawn uniformly; for each next one a few
    candidates are drawn with probability proportional to the square of their distance to
    the nearest box already chosen, and the one that brings the boxes closest is kept. A box
    lying on a chosen one is drawn only when every box does (duplicates)."""
    n = len(ws)
    first = rng.randrange(n)
    centres = [(float(ws[first]), float(hs[first]))]
    nearest = _distances_to(ws, hs, areas, *centres[0])
    tries = 2 + int(math.log(k))
    for _ in range(1, k):
        cumulative = np.cumsum(nearest * nearest)
        total = float(cumulative[-1])
        if total <= 0.0:
            index = rng.randrange(n)
            centres.append((float(ws[index]), float(hs[index])))
            continue
        best: tuple[float, int, np.ndarray] | None = None
        for _ in range(tries):
            index = min(int(np.searchsorted(cumulative, rng.random() * total, side="right")), n - 1)
            closer = np.minimum(_distances_to(ws, hs, areas, float(ws[index]), float(hs[index])), nearest)
            potential = float(np.sum(closer * closer))
            if best is None or potential < best[0]:
                best = (potential, index, closer)
        assert best is not None
        _, index, nearest = best
        centres.append((float(ws[index]), float(hs[index])))
    return centres


def _start(ws: np.ndarray, hs: np.ndarray, areas: np.ndarray, k: int, rng: random.Random,
           max_steps: int) -> list[Box]:
    """The centres to start from: see the module docstring."""
    n = len(ws)
    size = max(_WARM_START_SAMPLE, n // _WARM_START_SHRINK, 4 * k)
    if n <= 2 * _WARM_START_SAMPLE or size >= n:
        return _spread_start(ws, hs, areas, k, rng)
    # Many boxes: converge on a random sample first (itself started the same way). Starting
    # near the answer saves most of the passes over all the boxes.
    pick = _sample(n, size, rng)
    sample_w, sample_h = ws[pick], hs[pick]
    centres = _start(sample_w, sample_h, areas[pick], k, rng, max_steps)
    return _iterate(sample_w, sample_h, centres, max_steps).centres


def _sample(n: int, size: int, rng: random.Random) -> np.ndarray:
    """``size`` of ``range(n)``, drawn without replacement by ``rng``, in ascending order: the
    indices of the ``size`` smallest of n random 64-bit keys (a tie, about one chance in
    10^10 for a million boxes, is still decided the same way on every run). A tenth of the
    time ``random.sample`` takes, one index at a time."""
    if size >= n:
        return np.arange(n)
    keys = np.frombuffer(rng.randbytes(8 * n), dtype=np.uint64)
    return np.sort(np.argpartition(keys, size - 1)[:size])


def _two_nearest(full: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a distance matrix (changed in place): the column of the smallest (the
    lowest on a tie), the smallest and the second smallest distance."""
    rows = np.arange(len(full))
    nearest = full.argmin(axis=1)
    best = full[rows, nearest]
    full[rows, nearest] = np.inf
    return nearest, best, full.min(axis=1)


def _group(assign: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The box indices grouped by cluster (in index order within one), and the group ends."""
    order = np.argsort(assign.astype(np.uint8 if k < 256 else np.uint16), kind="stable")  # a radix sort
    return order, np.cumsum(np.bincount(assign, minlength=k))


class _Members:
    """Each cluster's widths and heights, kept sorted as boxes move, for the medians.

    Sorted Python lists: a few boxes moving (the long tail of small corrections) cost a
    bisection and a memmove each; many moving at once, the clusters are sorted again."""

    # More boxes moving than this: sort the touched clusters again from scratch.
    _REBUILD_ABOVE = 2000

    def __init__(self, ws: np.ndarray, hs: np.ndarray, assign: np.ndarray, k: int):
        self.ws, self.hs, self.k = ws, hs, k
        self.sorted_w: list[list[float]] = [[] for _ in range(k)]
        self.sorted_h: list[list[float]] = [[] for _ in range(k)]
        self.rebuild(assign, range(k))

    def rebuild(self, assign: np.ndarray, clusters: Iterable[int]) -> None:
        order, ends = _group(assign, self.k)
        for j in clusters:
            members = order[(ends[j - 1] if j else 0): ends[j]]
            self.sorted_w[j] = np.sort(self.ws[members]).tolist()
            self.sorted_h[j] = np.sort(self.hs[members]).tolist()

    def move(self, assign: np.ndarray, boxes: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        """``assign`` is already updated; ``boxes`` moved from ``old`` to ``new`` clusters."""
        if len(boxes) > self._REBUILD_ABOVE:
            self.rebuild(assign, set(old.tolist()) | set(new.tolist()))
            return
        for lists, values in ((self.sorted_w, self.ws[boxes].tolist()), (self.sorted_h, self.hs[boxes].tolist())):
            for value, a, b in zip(values, old.tolist(), new.tolist()):
                source = lists[a]
                del source[bisect_left(source, value)]
                insort(lists[b], value)

    def size(self, j: int) -> int:
        return len(self.sorted_w[j])

    def median(self, j: int) -> Box:
        """Per-coordinate median, as ``statistics.median`` (the mean of the middle two for an
        even count)."""
        return (_median(self.sorted_w[j]), _median(self.sorted_h[j]))


def _median(ordered: list[float]) -> float:
    m = len(ordered)
    mid = m // 2
    return ordered[mid] if m % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def _iterate(ws: Sequence[float] | np.ndarray, hs: Sequence[float] | np.ndarray, start: Sequence[Box],
             max_steps: int) -> _Outcome:
    """k-medians from the given centres until no box changes cluster (or ``max_steps`` passes).

    Same result as recomputing every distance on every pass, but only the boxes whose
    cluster might change are measured again (Hamerly's bounds, kept lazily). When box x was
    last measured, its distance to its own centre a was u and to every other centre at
    least l. As the centres move, by the triangle inequality
        distance to a           <= u + (the drifts of a since then)
        distance to any other   >= l - (the largest drift among the others, summed since then)
    so x cannot change cluster while l - u exceeds the growth of those sums, which are the
    same for every box of cluster a. So each box keeps a key, its slack l - u plus the sums
    of its cluster when it was filed, and a pass takes only the boxes whose key the sums
    have reached (one whole-array comparison). A taken box first gets its exact distance to
    its own centre, tested against the lower bound and against the distance from its centre
    to the nearest other one less that distance (no other centre c_j is nearer than
    ``d(c_a, c_j) - d(x, c_a)``); only if that does not settle it, is it measured against
    every centre. Ties are only ever decided by measuring, with a margin of ``_EPS``.
    """
    ws = np.asarray(ws, dtype=np.float64)
    hs = np.asarray(hs, dtype=np.float64)
    areas = ws * hs
    n, k = len(ws), len(start)
    cw = np.array([c[0] for c in start], dtype=np.float64)
    ch = np.array([c[1] for c in start], dtype=np.float64)
    if k == 1:
        # Nothing to assign: the second pass finds that nothing changes.
        single = np.zeros(n, dtype=np.intp)
        steps = min(2, max_steps)
        return _Outcome(centres=[_Members(ws, hs, single, 1).median(0)], assign=single, steps=steps,
                        converged=steps == 2, reseeded=0)
    assign = np.zeros(n, dtype=np.intp)
    # Per box, filed when it was last examined: its slack (lower bound minus upper bound) plus
    # its cluster's allowance at that time, and its lower bound plus its others' drift then.
    key = np.full(n, -np.inf)
    lower = np.zeros(n)
    own_drift = np.zeros(k)  # per cluster: its own drifts, summed over the passes
    others_drift = np.zeros(k)  # per cluster: the largest drift among the other clusters, summed
    members: _Members | None = None
    steps, converged, reseeded = 0, False, 0

    def file(boxes: np.ndarray, clusters: np.ndarray, u: np.ndarray, low: np.ndarray) -> None:
        key[boxes] = (low - u) + (own_drift + others_drift)[clusters]
        lower[boxes] = low + others_drift[clusters]

    while steps < max_steps:
        # The boxes whose slack may be used up (all of them on the first pass).
        check = np.flatnonzero(key <= (own_drift + others_drift + _EPS)[assign])
        if steps:
            # The cheap test: the exact distance to its own centre against the bounds.
            own = assign[check]
            u = _distances_to(ws[check], hs[check], areas[check], cw[own], ch[own])
            between = _distances(cw, ch, cw * ch, cw, ch)
            np.fill_diagonal(between, np.inf)
            low = np.maximum(lower[check] - others_drift[own], between.min(axis=1)[own] - u)
            stays = u + _EPS < low
            file(check[stays], own[stays], u[stays], low[stays])
            check = check[~stays]
        current = assign[check]
        full = _distances(ws[check], hs[check], areas[check], cw, ch)
        at_current = full[np.arange(len(check)), current]
        nearest, best, second = _two_nearest(full)
        if steps:  # after the first pass, a tie keeps the cluster
            nearest = np.where(at_current == best, current, nearest)
        file(check, nearest, best, second)
        moving = nearest != current
        boxes, old, new = check[moving], current[moving], nearest[moving]
        assign[boxes] = new
        steps += 1
        if members is None:
            members = _Members(ws, hs, assign, k)
        elif not len(boxes):
            converged = True
            break
        else:
            members.move(assign, boxes, old, new)
        touched = range(k) if steps == 1 else sorted(set(old.tolist()) | set(new.tolist()))
        before_w, before_h = cw.copy(), ch.copy()
        for j in touched:
            if members.size(j):
                cw[j], ch[j] = members.median(j)
        empty = [j for j in range(k) if not members.size(j)]
        if empty:
            reseeded += len(empty)
            _reseed(ws, hs, areas, assign, members, cw, ch, empty)
            key[:] = -np.inf  # measure every box again
        drift = _distances_to(before_w, before_h, before_w * before_h, cw, ch)  # each centre's own move
        order = np.argsort(drift)
        own_drift += drift
        others_drift += drift[order[-1]]
        others_drift[order[-1]] += drift[order[-2]] - drift[order[-1]]
    return _Outcome(centres=list(zip(cw.tolist(), ch.tolist())), assign=assign, steps=steps, converged=converged,
                    reseeded=reseeded)


def _reseed(ws: np.ndarray, hs: np.ndarray, areas: np.ndarray, assign: np.ndarray, members: _Members,
            cw: np.ndarray, ch: np.ndarray, empty: list[int]) -> None:
    """Each empty cluster, in turn, takes the box farthest from its nearest centre (the lowest
    index on a tie) from a cluster that keeps a box; then the donors' medians follow."""
    counts = np.bincount(assign, minlength=len(cw))
    nearest = _distances_to(ws, hs, areas, cw[assign], ch[assign])
    donors = set()
    for j in empty:
        i = int(np.argmax(np.where(counts[assign] > 1, nearest, -np.inf)))
        donor = int(assign[i])
        counts[donor] -= 1
        counts[j] += 1
        assign[i] = j
        members.move(assign, np.array([i]), np.array([donor]), np.array([j]))
        cw[j], ch[j] = ws[i], hs[i]
        nearest = np.minimum(nearest, _distances_to(ws, hs, areas, float(ws[i]), float(hs[i])))
        donors.add(donor)
    for donor in donors:
        if members.size(donor):
            cw[donor], ch[donor] = members.median(donor)


def _kmedians_arrays(ws: np.ndarray, hs: np.ndarray, k: int, seed: int, max_steps: int) -> _Outcome:
    """The outcome with its clusters numbered by area, smallest first."""
    rng = random.Random(seed)
    areas = ws * hs
    result = _iterate(ws, hs, _start(ws, hs, areas, k, rng, max_steps), max_steps)
    centres = result.centres
    order = sorted(range(k), key=lambda j: (centres[j][0] * centres[j][1], centres[j]))
    rank = np.empty(k, dtype=np.intp)
    rank[order] = np.arange(k)
    return result._replace(centres=[centres[j] for j in order], assign=rank[result.assign])


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
    outcome = _kmedians_arrays(ws, hs, k, seed, max_steps)
    return KMediansResult(centres=outcome.centres, assignments=outcome.assign.tolist(), steps=outcome.steps,
                          converged=outcome.converged, reseeded=outcome.reseeded)


def kmedians(boxes: Sequence[Box], k: int, *, seed: int = 0, max_steps: int = 10000) -> list[Box]:
    """The k IoU k-medians centres of normalised (w, h) boxes, sorted by area (ascending)."""
    return kmedians_detail(boxes, k, seed=seed, max_steps=max_steps).centres


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
    ws, hs = kitti_box_arrays(label_dirs, image_dirs, min_x=min_x, min_y=min_y, size_x=width, size_y=height)
    if len(ws) < n:
        raise InputError(
            f"{len(ws)} box(es) in {', '.join(os.fspath(d) for d in as_dirs(label_dirs))} "
            f"(after min_x={min_x}, min_y={min_y}): need at least {n} to compute {n} anchors"
        )
    centres = _kmedians_arrays(ws, hs, n, seed, max_steps).centres
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
