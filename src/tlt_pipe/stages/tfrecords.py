"""tfrecords: `<net> dataset_convert` on the prepared training tree (validation uses the val/ tree directly)."""

from __future__ import annotations

from tlt_pipe.specs import build_spec
from tlt_pipe.stages import Context, Outcome, Stage, StagePlan

SPEC = "specs/tfrecords.txt"
OUTPUT_DIR = "data/tfrecords"
PREFIX = f"{OUTPUT_DIR}/train"


def data_context(ctx: Context) -> dict:
    """Container paths of the prepared dataset, shared by every spec that reads it."""
    root = ctx.artifact("prepare", "root", default="data/kitti")
    classes = ctx.artifact("prepare", "classes", default=[])
    if ctx.config.dataset.classes:
        classes = sorted({v.lower() for v in ctx.config.dataset.classes.values()})
    return {
        "root": ctx.container(f"{root}/train"),
        "image_dir": "images",
        "label_dir": "labels",
        "image_extension": ctx.artifact("prepare", "image_extension", default=".jpg"),
        "num_shards": 10,
        "train_images": ctx.container(f"{root}/train/images"),
        "train_labels": ctx.container(f"{root}/train/labels"),
        "val_images": ctx.container(f"{root}/val/images"),
        "val_labels": ctx.container(f"{root}/val/labels"),
        "tfrecords": ctx.container(PREFIX) + "*",
        "classes": list(classes) or ["<classes from prepare>"],
    }


def plan(ctx: Context) -> StagePlan:
    spec = build_spec(
        f"{ctx.network.family}/tfrecords.txt.j2",
        {"data": data_context(ctx)},
        message="DatasetExportConfig",
        overrides=ctx.config.spec_overrides.get("tfrecords"),
        source="tfrecords",
    )
    return StagePlan(
        image=ctx.image,
        argv=(*ctx.command("dataset_convert"), "-d", ctx.container(SPEC), "-o", ctx.container(PREFIX)),
        specs={SPEC: spec},
        run_inputs=("data/kitti",),
        outputs=(OUTPUT_DIR,),
        clean=(OUTPUT_DIR,),
    )


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    shards = sorted(p.name for p in ctx.workspace.host(OUTPUT_DIR).iterdir() if p.name.startswith("train-"))
    if not shards:
        raise ValueError(f"dataset_convert wrote no shards into {OUTPUT_DIR}/")
    return Outcome(metrics={"shards": len(shards)}, artifacts={"prefix": PREFIX})


STAGE = Stage(name="tfrecords", needs=("prepare",), plan=plan, collect=collect,
              description="dataset_convert: KITTI -> TFRecords")
