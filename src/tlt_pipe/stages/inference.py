"""inference: `<net> inference` of the retrained model on test images (default: the validation images)."""

from __future__ import annotations

from tlt_pipe.stages import Context, Outcome, Stage, StagePlan

DIR = "infer"


def plan(ctx: Context) -> StagePlan:
    model = ctx.artifact("retrain", "model")
    if ctx.config.inference.images:
        images, inputs, run_inputs = ctx.workspace.input_path("images"), (ctx.config.inference.images,), ()
    else:
        root = ctx.artifact("prepare", "root", default="data/kitti")
        images, inputs, run_inputs = ctx.container(f"{root}/val/images"), (), (f"{root}/val/images",)
    argv = [*ctx.command("inference"), "-e", ctx.container("specs/retrain.txt"), "-m", ctx.container(model),
            "-i", images]
    if ctx.toolkit.results_flag:
        argv += ["-r", ctx.container(DIR)]
    else:
        argv += ["-o", ctx.container(f"{DIR}/images"), "-l", ctx.container(f"{DIR}/labels")]
    argv += [*ctx.key_args(), "-t", repr(ctx.config.inference.threshold)]
    return StagePlan(image=ctx.image, argv=tuple(argv), inputs=inputs, run_inputs=(model, *run_inputs),
                     outputs=(DIR,), clean=(DIR,))


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    labels = [p for p in ctx.workspace.host(DIR).rglob("*.txt") if p.parent.name == "labels"]
    detections = sum(1 for p in labels for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
    return Outcome(metrics={"images": len(labels), "detections": detections}, artifacts={"results": DIR})


STAGE = Stage(name="inference", needs=("retrain",), plan=plan, collect=collect,
              description="run the retrained model on test images")
