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


def _inference_spec(ctx: Context, model: str) -> str:
    from tlt_pipe.specs import build_spec  # jinja2 and protobuf: only when a spec is rendered

    return build_spec(
        ctx.network.inference_spec,
        {"data": data_context(ctx), "model": ctx.config.model, "model_path": ctx.container(model),
         "threshold": ctx.config.inference.threshold, "schema": ctx.toolkit.schema},
        schema=ctx.toolkit.schema,
        kind=f"{ctx.network.name}_inference",
        overrides=ctx.config.spec_overrides.get("inference"),
        source="inference",
    )


def plan(ctx: Context) -> StagePlan:
    model = ctx.read(retrain.MODEL)
    if ctx.config.inference.images:
        images, inputs, run_inputs = ctx.workspace.input_path("images"), (ctx.config.inference.images,), ()
    else:
        root = ctx.read(prepare.ROOT)
        images, inputs, run_inputs = ctx.container(f"{root}/val/images"), (), (f"{root}/val/images",)
    own_spec = ctx.network.inference_spec is not None
    specs = {INFERENCE_SPEC: _inference_spec(ctx, model)} if own_spec else {}
    spec = INFERENCE_SPEC if own_spec else ctx.read(retrain.SPEC)
    argv = [*ctx.command("inference"), "-e", ctx.container(spec)]
    if not own_spec:
        argv += ["-m", ctx.container(model)]
    argv += ["-i", images]
    if ctx.toolkit.results_flag:
        argv += ["-r", ctx.container(DIR)]
    elif own_spec:
        argv += ["-o", ctx.container(DIR)]  # writes images_annotated/ and labels/ there
    else:
        argv += ["-o", ctx.container(f"{DIR}/images"), "-l", ctx.container(f"{DIR}/labels")]
    argv += ctx.key_args()
    if not own_spec:
        argv += ["-t", repr(ctx.config.inference.threshold)]
    return StagePlan(image=ctx.image, argv=tuple(argv), specs=specs, inputs=inputs,
                     run_inputs=(model, *run_inputs), outputs=(DIR,), clean=(DIR,))


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    labels = [p for p in ctx.workspace.host(DIR).rglob("*.txt") if p.parent.name == "labels"]
    detections = sum(1 for p in labels for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
    return Outcome(metrics={"images": len(labels), "detections": detections}, artifacts={"results": DIR})


STAGE = Stage(name="inference", plan=plan, collect=collect, description="run the retrained model on test images",
              reads=(retrain.MODEL, retrain.SPEC, *DATASET), produces=(RESULTS,))
