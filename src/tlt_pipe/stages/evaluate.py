"""evaluate and evaluate_retrain: `<net> evaluate` on the selected checkpoint; AP per class and mAP."""

from __future__ import annotations

from tlt_pipe import parsers
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, prepare, retrain, train


def _plan(ctx: Context, *, name: str, model_handle: Artifact, spec_handle: Artifact) -> StagePlan:
    model, spec = ctx.read(model_handle), ctx.read(spec_handle)
    argv = [*ctx.command("evaluate"), "-e", ctx.container(spec), "-m", ctx.container(model), *ctx.key_args()]
    if ctx.toolkit.results_flag:
        argv += ["-r", ctx.container(name)]
    return StagePlan(
        image=ctx.image, argv=tuple(argv), run_inputs=(model, spec, ctx.read(prepare.ROOT)),
        outputs=(), clean=(name,) if ctx.toolkit.results_flag else (),
    )


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    """AP per class and mAP as fractions (DetectNet_v2 prints percentages)."""
    result = parsers.parse_ap_block(log_text)
    scale = 1.0
    if result is None:
        result, scale = parsers.parse_detectnet_eval(log_text), 0.01
    if result is None:
        raise ValueError("evaluate printed no AP table")
    return Outcome(metrics={"mAP": round(result.map * scale, 6),
                            "ap": {c: round(v * scale, 6) for c, v in result.ap.items()}}, artifacts={})


EVALUATE = Stage(name="evaluate", plan=lambda ctx: _plan(ctx, name="evaluate", model_handle=train.MODEL,
                                                         spec_handle=train.SPEC),
                 collect=collect, description="evaluate the best trained checkpoint",
                 reads=(train.MODEL, train.SPEC, prepare.ROOT))
EVALUATE_RETRAIN = Stage(name="evaluate_retrain",
                         plan=lambda ctx: _plan(ctx, name="evaluate_retrain", model_handle=retrain.MODEL,
                                                spec_handle=retrain.SPEC),
                         collect=collect, description="evaluate the best retrained checkpoint",
                         reads=(retrain.MODEL, retrain.SPEC, prepare.ROOT))
