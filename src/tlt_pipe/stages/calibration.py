"""calibration_tensorfile: DetectNet_v2's INT8 calibration batches (TLT 2 / TAO 3), before export.

Also the calibration arithmetic export and engine share: how many batches of which size fit
the calibration images (the training images of the prepared dataset).
"""

from __future__ import annotations

from dataclasses import dataclass

from tlt_pipe.config import Config
from tlt_pipe.networks import Network
from tlt_pipe.stages import Context, Outcome, Stage, StagePlan
from tlt_pipe.toolkits import Toolkit

DIR = "calibration"
TENSORFILE = f"{DIR}/calibration.tensorfile"


def applies(network: Network, toolkit: Toolkit, config: Config) -> bool:
    return network.int8_tensorfile and toolkit.calibrate_in_export and config.engine.data_type == "int8"


@dataclass(frozen=True)
class Calibration:
    image_dir: str  # run-relative
    batch_size: int
    batches: int
    available: int | None  # images in image_dir (None until prepare has run)

    @property
    def images(self) -> int:
        return self.batch_size * self.batches


def calibration(ctx: Context) -> Calibration:
    """Batches of the training images: at most engine.cal_batches, never more images than there are."""
    root = ctx.artifact("prepare", "root", default="data/kitti")
    available = ctx.metrics.get("prepare", {}).get("train_images")
    if applies(ctx.network, ctx.toolkit, ctx.config):
        size = ctx.config.retrain_resolved.batch_size  # the tensorfile batches with the training batch size
    else:
        size = ctx.config.engine.cal_batch_size or ctx.config.export.batch_size
    batches = ctx.config.engine.cal_batches
    if available:
        size = min(size, available)
        batches = max(1, min(batches, available // size))
    return Calibration(f"{root}/train/images", size, batches, available)


def plan(ctx: Context) -> StagePlan:
    cal = calibration(ctx)
    argv = [*ctx.command("calibration_tensorfile"), "-e", ctx.container("specs/retrain.txt"),
            "-o", ctx.container(TENSORFILE), "-m", str(cal.batches)]
    return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=("specs/retrain.txt", cal.image_dir),
                     outputs=(TENSORFILE,), clean=(DIR,))


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    cal = calibration(ctx)
    return Outcome(metrics={"calibration_images": cal.images, "batches": cal.batches, "batch_size": cal.batch_size},
                   artifacts={"tensorfile": TENSORFILE})


STAGE = Stage(name="calibration_tensorfile", needs=("retrain",), plan=plan, collect=collect,
              description="INT8 calibration tensorfile (DetectNet_v2 on TLT 2 / TAO 3)",
              promises=lambda ctx: {"tensorfile": TENSORFILE})
