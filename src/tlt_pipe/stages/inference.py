"""inference: `<net> inference` of the retrained model on test images (default: the validation images).

A network whose inference reads a spec of its own (Network.inference_spec: DetectNet_v2's names the
model, the classes and the per-class clustering) gets specs/inference.txt and no -m or -t.
"""

from __future__ import annotations

from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, prepare, retrain
from tlt_pipe.stages.tfrecords import DATASET, data_context

DIR = "infer"
RESULTS = Artifact("inference", "results", promise=lambda ctx: DIR)
INFERENCE_SPEC = "specs/inference.txt"


def inference_spec(ctx: Context, model: str, *, engine: bool = False) -> str:
    """The network's own inference spec (DetectNet_v2), naming the model, or the TensorRT engine."""
    from tlt_pipe.specs import build_spec  # jinja2 and protobuf: only when a spec is rendered

    return build_spec(
        ctx.network.inference_spec,
        {"data": data_context(ctx), "model": ctx.config.model, "model_path": ctx.container(model),
         "engine": engine, "threshold": ctx.config.inference.threshold, "schema": ctx.toolkit.schema},
        schema=ctx.toolkit.schema,
        kind=f"{ctx.network.name}_inference",
        overrides=ctx.config.spec_overrides.get("inference"),
        source="inference",
    )


def test_images(ctx: Context) -> tuple[str, tuple, tuple[str, ...]]:
    """The images to run on, as the task sees them: inference.images, else the validation images;
    with the host inputs and run inputs that brings."""
    if ctx.config.inference.images:
        return ctx.workspace.input_path("images"), (ctx.config.inference.images,), ()
    root = ctx.read(prepare.ROOT)
    return ctx.container(f"{root}/val/images"), (), (f"{root}/val/images",)


def tf_plan(ctx: Context, model: str, out_dir: str, *, spec_path: str = INFERENCE_SPEC, engine: bool = False) -> StagePlan:
    """`<net> inference` in the TF image on a model (or, where that image takes one, a TensorRT engine)."""
    images, inputs, run_inputs = test_images(ctx)
    own_spec = ctx.network.inference_spec is not None
    specs = {spec_path: inference_spec(ctx, model, engine=engine)} if own_spec else {}
    spec = spec_path if own_spec else ctx.read(retrain.SPEC)
    argv = [*ctx.command("inference"), "-e", ctx.container(spec)]
    if not own_spec:
        argv += ["-m", ctx.container(model)]
    argv += ["-i", images]
    if ctx.toolkit.results_flag:
        argv += ["-r", ctx.container(out_dir)]
    elif own_spec:
        argv += ["-o", ctx.container(out_dir)]  # writes images_annotated/ and labels/ there
    else:
        argv += ["-o", ctx.container(f"{out_dir}/images"), "-l", ctx.container(f"{out_dir}/labels")]
    argv += ctx.key_args()
    if not own_spec:
        argv += ["-t", repr(ctx.config.inference.threshold)]
    return StagePlan(image=ctx.image, argv=tuple(argv), specs=specs, inputs=inputs,
                     run_inputs=(model, *run_inputs), outputs=(out_dir,), clean=(out_dir,), probe=engine)


def plan(ctx: Context) -> StagePlan:
    return tf_plan(ctx, ctx.read(retrain.MODEL), DIR)


def counts(ctx: Context, out_dir: str) -> dict[str, int]:
    """Images with a label file and detections written under out_dir."""
    labels = [p for p in ctx.workspace.host(out_dir).rglob("*.txt") if p.parent.name == "labels"]
    detections = sum(1 for p in labels for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
    return {"images": len(labels), "detections": detections}


def outcome(ctx: Context, out_dir: str, **metrics) -> Outcome:
    """Counts, the results folder and the images it ran on (on the host: a path in the run, or inference.images),
    which the report's grid draws the detections on."""
    source = str(ctx.config.inference.images) if ctx.config.inference.images else f"{ctx.read(prepare.ROOT)}/val/images"
    return Outcome(metrics={**counts(ctx, out_dir), "threshold": ctx.config.inference.threshold, **metrics},
                   artifacts={"results": out_dir, "images": source})


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    return outcome(ctx, DIR)


STAGE = Stage(name="inference", plan=plan, collect=collect, description="run the retrained model on test images",
              reads=(retrain.MODEL, retrain.SPEC, *DATASET), produces=(RESULTS,))
