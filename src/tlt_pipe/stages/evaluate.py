"""evaluate and evaluate_retrain: `<net> evaluate` on the selected checkpoint; AP per class and mAP."""

from __future__ import annotations

from tlt_pipe import parsers
from tlt_pipe.stages import Context, Outcome, Stage, StagePlan


def _plan(ctx: Context, *, name: str, trained: str) -> StagePlan:
    model = ctx.artifact(trained, "model")
    argv = [*ctx.command("evaluate"), "-e", ctx.container(f"specs/{trained}.txt"), "-m", ctx.container(model),
            *ctx.key_args()]
    if ctx.toolkit.results_flag:
        argv += ["-r", ctx.container(name)]
    return StagePlan(
        image=ctx.image, argv=tuple(argv), run_inputs=(model, f"specs/{trained}.txt", "data/kitti"),
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


EVALUATE = Stage(name="evaluate", needs=("train",), plan=lambda ctx: _plan(ctx, name="evaluate", trained="train"),
                 collect=collect, description="evaluate the best trained checkpoint")
EVALUATE_RETRAIN = Stage(name="evaluate_retrain", needs=("retrain",),
                         plan=lambda ctx: _plan(ctx, name="evaluate_retrain", trained="retrain"),
                         collect=collect, description="evaluate the best retrained checkpoint")
