"""prepare: convert the raw dataset inside the run directory (host side): KITTI train/ and val/ trees for TAO's
TF1 networks, COCO JSON for its PyTorch ones, the VOC layout for pytorch-ssd (Network.dataset_layout)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan

OUTPUTS = {"kitti": "data/kitti", "voc": "data/voc", "coco": "data/coco"}


def output(ctx: Context) -> str:
    return OUTPUTS[ctx.network.dataset_layout]


ROOT = Artifact("prepare", "root", promise=output)  # KITTI: train/ and val/, each images/ and labels/
CLASSES = Artifact("prepare", "classes")  # the class names found, lower case, sorted (COCO: by category id)
IMAGE_EXTENSION = Artifact("prepare", "image_extension")  # of the converted images, with its dot
TRAIN_IMAGES = Artifact("prepare", "train_images", in_metrics=True)


def _options(ctx: Context):
    from tlt_pipe.datasets import ConvertOptions

    ds = ctx.config.dataset
    resize = tuple(int(v) for v in ds.resize.split("x")) if ds.resize else None
    return ConvertOptions(
        classes=dict(ds.classes) if ds.classes is not None else None,
        resize=resize,
        resize_mode=ds.resize_mode,
        val_split=ds.val_split,
        seed=ds.seed,
        subsets=list(ds.subsets) if ds.subsets else None,
        names_file=ds.names,
        resize_multiple=ctx.network.input_multiple,  # the model input's own rule (config checks it)
        to=ctx.network.dataset_layout,
    )


def plan(ctx: Context) -> StagePlan:
    ds = ctx.config.dataset
    inputs = [ds.path] + ([ds.names] if ds.names else [])
    return StagePlan(
        inputs=tuple(inputs),
        outputs=(output(ctx),),
        params={"dataset": ds.model_dump(mode="json", exclude={"path", "names"})},
    )


def run_on_host(ctx: Context, plan_: StagePlan, log: Callable[[str], None]) -> None:
    from tlt_pipe.datasets import convert

    ds = ctx.config.dataset
    last = [-1]

    def progress(done: int, total: int | None) -> None:
        step = max(1, (total or 1000) // 10)
        if done // step != last[0]:
            last[0] = done // step
            log(f"converted {done}/{total if total is not None else '?'} images")

    report = convert(ds.format, ds.path, ctx.workspace.host(output(ctx)), _options(ctx), on_progress=progress)
    for line in report.summary_lines():
        log(line)


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    report = json.loads(ctx.workspace.host(f"{output(ctx)}/report.json").read_text(encoding="utf-8"))
    # The classes found; COCO: its categories in id order (1..N), a class without a box included.
    coco = report.get("layout") == "coco" and report.get("classes")
    classes = list(report["classes"]) if coco else sorted(report.get("objects_per_class", {}))
    if not any(report.get("objects_per_class", {}).values()):
        unknown = ", ".join(sorted(report.get("unknown_classes") or {})) or "none"
        raise ValueError(f"no object left after converting {ctx.config.dataset.path} (classes found but not in "
                         f"dataset.classes: {unknown}); check dataset.classes and dataset.format")
    metrics = {k: report.get(k) for k in ("images", "train_images", "val_images", "objects_per_class")}
    return Outcome(
        metrics=metrics,
        artifacts={
            "root": output(ctx),
            "classes": classes,
            "image_extension": report.get("image_extension") or ".jpg",
        },
    )


STAGE = Stage(name="prepare", plan=plan, collect=collect, run_on_host=run_on_host,
              description="convert the dataset (KITTI train/val, or VOC for pytorch-ssd)",
              produces=(ROOT, CLASSES, IMAGE_EXTENSION, TRAIN_IMAGES))
