"""retrain: `<net> train` again, from the pruned model, with the retrain experiment spec (stages/train.py
holds the training machinery both share)."""

from __future__ import annotations

from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, prune
from tlt_pipe.stages.train import TRAINING_READS, before_training, collect_training, promised_model, spec_path, train_plan


def plan(ctx: Context) -> StagePlan:
    pruned = ctx.read(prune.MODEL)
    return train_plan(ctx, name="retrain", train=ctx.config.retrain_resolved, start_model=ctx.container(pruned),
                      inputs=(), run_inputs=(pruned,))


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    return collect_training(ctx, "retrain", chosen_epoch=None, log_text=log_text)


MODEL = Artifact("retrain", "model", promise=lambda ctx: promised_model(ctx, "retrain"))
EPOCH = Artifact("retrain", "epoch")
SPEC = Artifact("retrain", "spec", promise=lambda ctx: spec_path("retrain"))

STAGE = Stage(name="retrain", plan=plan, collect=collect, before_run=before_training,
              description="retrain the pruned model", reads=(*TRAINING_READS, prune.MODEL), produces=(MODEL, EPOCH, SPEC))
