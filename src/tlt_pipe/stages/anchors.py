"""anchors: YOLO anchor shapes from the prepared training labels, written into the train spec.

Native (default): seeded IoU k-medians on the host (tlt_pipe.anchors), the way `<net> kmeans`
clusters, but reproducible. `anchors: {mode: tao}` runs the container's kmeans instead and
reads the anchors it prints. Either way the result is recorded as artifacts
(small/mid/big_anchor_shape) that the train and retrain specs use.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tlt_pipe import parsers
from tlt_pipe.config import Config
from tlt_pipe.networks import Network
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, prepare

DIR = "anchors"
OUTPUT = f"{DIR}/anchors.json"

# The anchor shape strings the train and retrain specs take, one per group a network has
# (Network.anchor_groups: YOLOv3/v4 small, mid and big; YOLOv4-tiny mid and big).
SHAPES = {name: Artifact("anchors", name) for name in ("small_anchor_shape", "mid_anchor_shape", "big_anchor_shape")}
ANCHORS = Artifact("anchors", "anchors")  # every anchor, [width, height], as clustered


def applies(network: Network) -> bool:
    return bool(network.anchor_groups)


def anchor_count(ctx: Context) -> int:
    """anchors.count (checked against the network's anchor shapes when the config was read), or 3 a shape."""
    return ctx.config.anchors.count or 3 * len(ctx.network.anchor_groups)


def shapes(ctx: Context) -> dict[str, str]:
    """The anchor shape strings for the spec (placeholders until the anchors stage has run)."""
    return {name: ctx.read(SHAPES[name]) for name in ctx.network.anchor_groups}


def _labels_and_images(ctx: Context) -> tuple[str, str]:
    root = ctx.read(prepare.ROOT)
    return f"{root}/train/labels", f"{root}/train/images"


def plan(ctx: Context) -> StagePlan:
    cfg, model = ctx.config.anchors, ctx.config.model
    count = anchor_count(ctx)
    labels, images = _labels_and_images(ctx)
    params = {"count": count, "width": model.input_width, "height": model.input_height,
              **cfg.model_dump(exclude={"count"})}
    if cfg.mode == "tao":
        argv = [*ctx.command("kmeans"), "-l", ctx.container(labels), "-i", ctx.container(images),
                "-x", str(model.input_width), "-y", str(model.input_height), "-n", str(count),
                "--max_steps", str(cfg.max_steps), "--min_x", str(cfg.min_x), "--min_y", str(cfg.min_y)]
        return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=(labels, images), params=params)
    return StagePlan(run_inputs=(labels, images), outputs=(OUTPUT,), clean=(DIR,), params=params)


def run_on_host(ctx: Context, plan_: StagePlan, log: Callable[[str], None]) -> None:
    from tlt_pipe.anchors import compute_anchors  # only when anchors are computed

    labels, images = _labels_and_images(ctx)
    p = plan_.params
    anchors = compute_anchors(ctx.workspace.host(labels), ctx.workspace.host(images), p["width"], p["height"],
                              n=p["count"], seed=p["seed"], min_x=p["min_x"], min_y=p["min_y"],
                              max_steps=p["max_steps"])
    log(f"{len(anchors)} anchors at {p['width']}x{p['height']} (IoU k-medians, seed {p['seed']}):")
    for w, h in anchors:
        log(f"({w:.2f}, {h:.2f})")
    ctx.workspace.host(OUTPUT).write_text(json.dumps({"anchors": anchors}, indent=1) + "\n", encoding="utf-8")


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    from tlt_pipe.anchors import anchor_groups, format_anchor_shape

    if plan_.image is None:
        anchors = [tuple(a) for a in json.loads(ctx.workspace.host(OUTPUT).read_text(encoding="utf-8"))["anchors"]]
    else:
        anchors = parsers.parse_kmeans_anchors(log_text)
    if len(anchors) != plan_.params["count"]:
        raise ValueError(f"expected {plan_.params['count']} anchors, got {len(anchors)}")
    names = ctx.network.anchor_groups
    groups = anchor_groups(anchors, tuple(n.split("_", 1)[0] for n in names))
    formatted = {name: format_anchor_shape(groups[name.split("_", 1)[0]]) for name in names}
    return Outcome(metrics={"mode": ctx.config.anchors.mode, **formatted},
                   artifacts={"anchors": [list(a) for a in anchors], **formatted})


STAGE = Stage(name="anchors", plan=plan, collect=collect, run_on_host=run_on_host,
              description="YOLO anchor shapes from the training boxes",
              reads=(prepare.ROOT,), produces=(ANCHORS, *SHAPES.values()))
TAO = Stage(name="anchors", plan=plan, collect=collect,
            description="YOLO anchor shapes from the container's kmeans",
            reads=(prepare.ROOT,), produces=(ANCHORS, *SHAPES.values()))


def stage_for(config: Config) -> Stage:
    return TAO if config.anchors.mode == "tao" else STAGE
