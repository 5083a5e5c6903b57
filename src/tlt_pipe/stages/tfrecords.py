"""tfrecords: `<net> dataset_convert` on the prepared training tree.

SSD, DSSD, RetinaNet and YOLO validate on the val/ KITTI tree directly; DetectNet_v2 (and, in
TLT 2.0, SSD, DSSD, RetinaNet and YOLOv3) reads its validation set from TFRecords only, so it
converts val/ too (stage tfrecords_val).
"""

from __future__ import annotations

from tlt_pipe.networks import Network
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, is_pending
from tlt_pipe.stages import prepare

OUTPUT_DIR = "data/tfrecords"
PREFIX = f"{OUTPUT_DIR}/train"
VAL_DIR = "data/tfrecords_val"
VAL_PREFIX = f"{VAL_DIR}/val"

RECORDS = Artifact("tfrecords", "prefix", promise=lambda ctx: PREFIX)  # the shards are <prefix>-*
VAL_RECORDS = Artifact("tfrecords_val", "prefix", promise=lambda ctx: VAL_PREFIX)
# What every spec reading the prepared dataset reads (data_context).
DATASET = (prepare.ROOT, prepare.CLASSES, prepare.IMAGE_EXTENSION)


def validation_records(network: Network, toolkit_version: str) -> bool:
    """Whether the network needs the validation split as TFRecords too."""
    return network.validation_records(toolkit_version)


def data_context(ctx: Context, *, records: bool = False) -> dict:
    """Container paths of the prepared dataset, shared by every spec that reads it (records: and of its
    TFRecords, for training)."""
    root = ctx.read(prepare.ROOT)
    if ctx.config.dataset.classes:
        classes = sorted({v.lower() for v in ctx.config.dataset.classes.values()})
    else:
        found = ctx.read(prepare.CLASSES)
        classes = [found] if is_pending(found) else list(found)
    extension = ctx.read(prepare.IMAGE_EXTENSION)
    data = {
        "root": ctx.container(f"{root}/train"),
        "image_dir": "images",
        "label_dir": "labels",
        "image_extension": extension,
        "image_extension_bare": extension.lstrip("."),  # YOLO and DetectNet_v2 dataset_config: no dot
        "num_shards": 10,
        "train_images": ctx.container(f"{root}/train/images"),
        "train_labels": ctx.container(f"{root}/train/labels"),
        "val_root": ctx.container(f"{root}/val"),
        "val_images": ctx.container(f"{root}/val/images"),
        "val_labels": ctx.container(f"{root}/val/labels"),
        "classes": classes,
    }
    if records:
        data["tfrecords"] = ctx.container(ctx.read(RECORDS)) + "*"
        data["val_tfrecords"] = ctx.container(ctx.read(VAL_RECORDS)) + "*"
    return data


def _plan(ctx: Context, *, split: str, spec_path: str, output_dir: str, prefix: str) -> StagePlan:
    from tlt_pipe.specs import build_spec  # jinja2 and protobuf: only when a spec is rendered

    data = data_context(ctx)
    if split == "val":
        data = {**data, "root": data["val_root"]}
    spec = build_spec(
        f"{ctx.network.family}/tfrecords.txt.j2",
        {"data": data},
        schema=ctx.toolkit.schema,
        kind="dataset_convert",
        overrides=ctx.config.spec_overrides.get("tfrecords"),
        source="tfrecords",
    )
    return StagePlan(
        image=ctx.image,
        argv=(*ctx.command("dataset_convert"), "-d", ctx.container(spec_path), "-o", ctx.container(prefix)),
        specs={spec_path: spec},
        run_inputs=(ctx.read(prepare.ROOT),),
        outputs=(output_dir,),
        clean=(output_dir,),
        params={"output_dir": output_dir, "shard_prefix": prefix.rsplit("/", 1)[1] + "-"},
    )


def plan(ctx: Context) -> StagePlan:
    return _plan(ctx, split="train", spec_path="specs/tfrecords.txt", output_dir=OUTPUT_DIR, prefix=PREFIX)


def plan_validation(ctx: Context) -> StagePlan:
    return _plan(ctx, split="val", spec_path="specs/tfrecords_val.txt", output_dir=VAL_DIR, prefix=VAL_PREFIX)


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    output_dir, start = plan_.params["output_dir"], plan_.params["shard_prefix"]
    shards = sorted(p.name for p in ctx.workspace.host(output_dir).iterdir() if p.name.startswith(start))
    if not shards:
        raise ValueError(f"dataset_convert wrote no shards into {output_dir}/")
    return Outcome(metrics={"shards": len(shards)}, artifacts={"prefix": f"{output_dir}/{start[:-1]}"})


STAGE = Stage(name="tfrecords", plan=plan, collect=collect, description="dataset_convert: KITTI -> TFRecords",
              reads=DATASET, produces=(RECORDS,))
VALIDATION = Stage(name="tfrecords_val", plan=plan_validation, collect=collect,
                   description="dataset_convert of the validation split (DetectNet_v2, TLT 2.0)",
                   reads=DATASET, produces=(VAL_RECORDS,))
