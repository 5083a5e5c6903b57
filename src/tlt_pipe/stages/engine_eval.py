"""evaluate_engine and inference_engine: the TensorRT engine on the validation set and on the test images.

Each runs in the image that built the engine, since an engine loads only under the TensorRT that built it:
- built by gen_trt_engine (TAO 5.x; TAO 4.0 INT8): the deploy image,
  `<net> evaluate|inference -m ENGINE -e SPEC -i IMAGES [-l LABELS] -r RESULTS`;
- built by the converter (TLT 2.0, TAO 3.x, TAO 4.0): the TF image's own evaluate and inference, which
  take an engine for -m. DetectNet_v2 evaluates it with `-f tensorrt`, and its inference spec names the
  engine in tensorrt_config.
TLT 2.0's DetectNet_v2 evaluate has no TensorRT mode: there the chain has inference_engine but no
evaluate_engine (`applies`).

evaluate_engine records the engine's mAP beside the retrained model's (evaluate_retrain) and the drop
between them; both stages record the GPU and TensorRT they ran on and warn when that is not the machine
the engine was built on.
"""

from __future__ import annotations

from tlt_pipe import provenance
from tlt_pipe.networks import Network
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, engine, evaluate, inference, prepare, retrain
from tlt_pipe.stages.tfrecords import DATASET
from tlt_pipe.toolkits import Toolkit

EVAL_DIR = "evaluate_engine"
INFER_DIR = "infer_engine"
INFERENCE_SPEC = "specs/inference_engine.txt"
RESULTS = Artifact("inference_engine", "results", promise=lambda ctx: INFER_DIR)
MODEL_MAP = Artifact("evaluate_retrain", "mAP", in_metrics=True)  # the TF model's, to compare with


def evaluates(network: Network, toolkit: Toolkit) -> bool:
    """Whether the toolkit can measure an engine's mAP (not TLT 2.0's DetectNet_v2)."""
    return not (toolkit.legacy_commands and network.inference_spec is not None)


def in_deploy_image(ctx: Context) -> bool:
    return engine.builder(ctx) == "gen_trt_engine"


def _evaluate_plan(ctx: Context) -> StagePlan:
    trt, spec, root = ctx.read(engine.ENGINE), ctx.read(retrain.SPEC), ctx.read(prepare.ROOT)
    if in_deploy_image(ctx):
        batch = min(ctx.config.engine.max_batch_size, ctx.config.export.batch_size)
        argv = [*ctx.command("evaluate"), "-m", ctx.container(trt), "-e", ctx.container(spec),
                "-i", ctx.container(f"{root}/val/images"), "-l", ctx.container(f"{root}/val/labels"),
                "-r", ctx.container(EVAL_DIR), "-b", str(batch)]
        return StagePlan(image=ctx.deploy_image, argv=tuple(argv), run_inputs=(trt, spec, root), clean=(EVAL_DIR,),
                         probe=True)
    argv = [*ctx.command("evaluate"), "-e", ctx.container(spec), "-m", ctx.container(trt), *ctx.key_args()]
    if ctx.network.inference_spec is not None:
        argv += ["-f", "tensorrt"]
    if ctx.toolkit.results_flag:
        argv += ["-r", ctx.container(EVAL_DIR)]
    return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=(trt, spec, root),
                     clean=(EVAL_DIR,) if ctx.toolkit.results_flag else (), probe=True)


def _where(ctx: Context, log_text: str) -> tuple[dict, tuple[str, ...]]:
    """The machine the engine ran on, and a warning when it is not the one it was built on."""
    return provenance.ran_on(ctx.read(engine.PROVENANCE), log_text)


def _evaluate_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    measured = evaluate.collect(ctx, plan_, log_text).metrics
    used, warnings = _where(ctx, log_text)
    metrics = provenance.beside_model(measured, ctx.config.engine.data_type, used, ctx.read(MODEL_MAP))
    return Outcome(metrics=metrics, artifacts={}, warnings=warnings)


def _inference_plan(ctx: Context) -> StagePlan:
    trt = ctx.read(engine.ENGINE)
    if not in_deploy_image(ctx):
        return inference.tf_plan(ctx, trt, INFER_DIR, spec_path=INFERENCE_SPEC, engine=True)
    images, inputs, run_inputs = inference.test_images(ctx)
    spec = ctx.read(retrain.SPEC)
    argv = [*ctx.command("inference"), "-m", ctx.container(trt), "-e", ctx.container(spec), "-i", images,
            "-r", ctx.container(INFER_DIR)]
    if ctx.network.inference_spec is None:  # DetectNet_v2 takes its thresholds from the spec's clustering
        argv += ["-t", repr(ctx.config.inference.threshold)]
    return StagePlan(image=ctx.deploy_image, argv=tuple(argv), inputs=inputs, run_inputs=(trt, spec, *run_inputs),
                     outputs=(INFER_DIR,), clean=(INFER_DIR,), probe=True)


def _inference_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    used, warnings = _where(ctx, log_text)
    done = inference.outcome(ctx, INFER_DIR, precision=ctx.config.engine.data_type, ran_on=used)
    return Outcome(metrics=done.metrics, artifacts=done.artifacts, warnings=warnings)


EVALUATE_ENGINE = Stage(name="evaluate_engine", plan=_evaluate_plan, collect=_evaluate_collect,
                        description="evaluate the TensorRT engine on the validation set",
                        reads=(engine.ENGINE, engine.PROVENANCE, retrain.SPEC, prepare.ROOT, MODEL_MAP))
INFERENCE_ENGINE = Stage(name="inference_engine", plan=_inference_plan, collect=_inference_collect,
                         description="run the TensorRT engine on test images",
                         reads=(engine.ENGINE, engine.PROVENANCE, retrain.SPEC, *DATASET), produces=(RESULTS,))
