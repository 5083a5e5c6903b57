"""prune: `<net> prune` on the selected trained checkpoint."""

from __future__ import annotations

from tlt_pipe import parsers
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, train

DIR = "prune"

MODEL = Artifact("prune", "model",
                 promise=lambda ctx: f"{DIR}/{ctx.network.checkpoint_prefix}_pruned.{ctx.toolkit.checkpoint_ext}")


def plan(ctx: Context) -> StagePlan:
    cfg = ctx.config.prune
    model = ctx.read(train.MODEL)
    output = MODEL.promise(ctx)
    argv = [*ctx.command("prune"), "-m", ctx.container(model), "-o", ctx.container(output), *ctx.key_args()]
    run_inputs: tuple[str, ...] = (model,)
    if ctx.network.prune_reads_spec:
        spec = ctx.read(train.SPEC)
        argv += ["-e", ctx.container(spec)]
        run_inputs += (spec,)
    argv += ["-eq", cfg.equalization, "-pth", repr(cfg.threshold)]
    if cfg.norm:
        argv += ["-n", cfg.norm]
    if cfg.granularity:
        argv += ["-pg", str(cfg.granularity)]
    if cfg.min_filters:
        argv += ["-nf", str(cfg.min_filters)]
    if cfg.excluded_layers:
        argv += ["-el", *cfg.excluded_layers]
    return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=run_inputs, outputs=(output,), clean=(DIR,),
                     params={"output": output})


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    ratio = parsers.parse_prune_ratio(log_text)
    return Outcome(metrics={"pruning_ratio": ratio}, artifacts={"model": plan_.params["output"]})


STAGE = Stage(name="prune", plan=plan, collect=collect, description="prune the trained model",
              reads=(train.MODEL, train.SPEC), produces=(MODEL,))
