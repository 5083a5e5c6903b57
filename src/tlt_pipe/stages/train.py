"""train and retrain: `<net> train` with the rendered experiment spec; picks the best checkpoint.

SSD-family networks take the starting model with -m: the pretrained weights for train, the
pruned model for retrain.
"""

from __future__ import annotations

from tlt_pipe import parsers
from tlt_pipe.config import TrainConfig
from tlt_pipe.errors import ConfigError
from tlt_pipe.specs import build_spec
from tlt_pipe.stages import Context, Outcome, Stage, StagePlan
from tlt_pipe.stages.tfrecords import data_context


def experiment_spec(ctx: Context, train: TrainConfig, *, source: str) -> str:
    """The experiment spec for train (source='train') or retrain (source='retrain')."""
    overrides = {**ctx.config.spec_overrides.get("experiment", {}), **ctx.config.spec_overrides.get(source, {})}
    return build_spec(
        f"{ctx.network.family}/experiment.txt.j2",
        {"network": ctx.network.name, "model": ctx.config.model, "train": train, "data": data_context(ctx)},
        message=ctx.network.spec_message,
        overrides=overrides,
        check=ctx.network.check_spec,
        source=source,
    )


def _train_plan(ctx: Context, *, name: str, train: TrainConfig, start_model: list[str], inputs: tuple,
                run_inputs: tuple) -> StagePlan:
    spec_path = f"specs/{name}.txt"
    argv = [*ctx.command("train"), "-e", ctx.container(spec_path), "-r", ctx.container(name), *ctx.key_args(),
            *start_model, "--gpus", "1"]
    if train.use_amp:
        argv.append("--use_amp")
    model = ctx.config.model
    return StagePlan(
        image=ctx.image,
        argv=tuple(argv),
        specs={spec_path: experiment_spec(ctx, train, source=name)},
        inputs=inputs,
        run_inputs=("data/kitti", "data/tfrecords", *run_inputs),
        outputs=(name, f"{name}/{ctx.network.training_csv(model.arch, model.nlayers)}"),
        clean=(name,),
    )


def plan_train(ctx: Context) -> StagePlan:
    pretrained = ctx.config.model.pretrained
    start = ["-m", ctx.workspace.input_path("pretrained")] if pretrained else []
    return _train_plan(ctx, name="train", train=ctx.config.train, start_model=start,
                       inputs=(pretrained,) if pretrained else (), run_inputs=())


def plan_retrain(ctx: Context) -> StagePlan:
    pruned = ctx.artifact("prune", "model")
    return _train_plan(ctx, name="retrain", train=ctx.config.retrain_resolved,
                       start_model=["-m", ctx.container(pruned)], inputs=(), run_inputs=(pruned,))


def collect_training(ctx: Context, results: str, *, chosen_epoch: int | None) -> Outcome:
    """Best checkpoint of a results directory: highest mAP in the log (ties: later), else the last one."""
    model = ctx.config.model
    csv_path = ctx.workspace.host(f"{results}/{ctx.network.training_csv(model.arch, model.nlayers)}")
    rows = parsers.parse_training_csv(csv_path.read_text(encoding="utf-8")) if csv_path.exists() else []
    weights = ctx.workspace.host(f"{results}/weights")
    files = sorted(p.name for p in weights.iterdir()) if weights.is_dir() else []
    checkpoints = parsers.checkpoint_epochs(files, ctx.toolkit.checkpoint_ext)
    if not checkpoints:
        raise ValueError(f"training wrote no .{ctx.toolkit.checkpoint_ext} checkpoint into {results}/weights/")
    if chosen_epoch is not None:
        if chosen_epoch not in checkpoints:
            have = ", ".join(str(e) for e in sorted(checkpoints))
            raise ConfigError(f"evaluate.epoch: no checkpoint for epoch {chosen_epoch} in {results}/weights/ (have: {have})")
        epoch, how = chosen_epoch, "evaluate.epoch"
    else:
        epoch = parsers.best_epoch(rows, checkpoints)
        how = "best mAP" if any(r.map is not None and r.epoch == epoch for r in rows) else "last checkpoint"
    row = next((r for r in rows if r.epoch == epoch), None)
    metrics = {
        "epochs": max((r.epoch for r in rows), default=max(checkpoints)),
        "best_epoch": epoch,
        "selected_by": how,
        "mAP": row.map if row else None,
        "ap": dict(row.ap) if row else {},
        "loss": rows[-1].loss if rows else None,
        "checkpoints": len(checkpoints),
    }
    return Outcome(metrics=metrics, artifacts={"model": f"{results}/weights/{checkpoints[epoch]}", "epoch": epoch})


def collect_train(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    return collect_training(ctx, "train", chosen_epoch=ctx.config.evaluate.epoch)


def collect_retrain(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    return collect_training(ctx, "retrain", chosen_epoch=None)


TRAIN = Stage(name="train", needs=("tfrecords",), plan=plan_train, collect=collect_train,
              description="train from the pretrained model")
RETRAIN = Stage(name="retrain", needs=("prune",), plan=plan_retrain, collect=collect_retrain,
                description="retrain the pruned model")
