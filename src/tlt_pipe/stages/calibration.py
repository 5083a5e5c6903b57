"""calibration_tensorfile: DetectNet_v2's INT8 calibration batches (TLT 2 / TAO 3), before export.

Also the calibration arithmetic export and engine share: how many batches of which size fit
the calibration images (the training images of the prepared dataset).
"""

from __future__ import annotations

from dataclasses import dataclass

from tlt_pipe.config import Config
from tlt_pipe.networks import Network
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, prepare, retrain
from tlt_pipe.toolkits import Toolkit

DIR = "calibration"
TENSORFILE_PATH = f"{DIR}/calibration.tensorfile"
TENSORFILE = Artifact("calibration_tensorfile", "tensorfile", promise=lambda ctx: TENSORFILE_PATH)
# What the calibration arithmetic reads (every stage that calls calibration() declares it).
READS = (prepare.ROOT, prepare.TRAIN_IMAGES)


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
    root = ctx.read(prepare.ROOT)
    available = ctx.read(prepare.TRAIN_IMAGES)
    available = available if isinstance(available, int) else None
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
    spec = ctx.read(retrain.SPEC)
    argv = [*ctx.command("calibration_tensorfile"), "-e", ctx.container(spec),
            "-o", ctx.container(TENSORFILE_PATH), "-m", str(cal.batches)]
    return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=(spec, cal.image_dir),
                     outputs=(TENSORFILE_PATH,), clean=(DIR,))


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    cal = calibration(ctx)
    return Outcome(metrics={"calibration_images": cal.images, "batches": cal.batches, "batch_size": cal.batch_size},
                   artifacts={"tensorfile": TENSORFILE_PATH})


STAGE = Stage(name="calibration_tensorfile", plan=plan, collect=collect,
              description="INT8 calibration tensorfile (DetectNet_v2 on TLT 2 / TAO 3)",
              reads=(retrain.SPEC, *READS), produces=(TENSORFILE,))
