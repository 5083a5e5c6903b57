"""train and retrain: `<net> train` with the rendered experiment spec; picks the best checkpoint.

SSD-family networks take the starting model with -m: the pretrained weights for train, the
pruned model for retrain.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tlt_pipe import parsers
from tlt_pipe.config import TrainConfig
from tlt_pipe.errors import ConfigError
from tlt_pipe.manifest import write_atomic
from tlt_pipe.resume import ResumePoint, choose_resume_point
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


def history_copy(log: str) -> str:
    """Where the training log of the epochs before a resume is kept (TAO overwrites the CSV)."""
    return str(Path(log).parent / ".history" / Path(log).name)


def _resume_point(ctx: Context, name: str) -> ResumePoint | None:
    """Where an unfinished training run continues from, or None to start over."""
    wanted = ctx.resume_epoch is not None or (ctx.resume and ctx.statuses.get(name) in ("failed", "interrupted", "running"))
    weights = ctx.workspace.host(f"{name}/weights")
    if not wanted or not weights.is_dir():
        if ctx.resume_epoch is not None:
            raise ConfigError(f"--resume-epoch {ctx.resume_epoch}: {name}/weights/ has no checkpoints to resume from")
        return None
    files = [p.name for p in weights.iterdir()]
    found = parsers.checkpoint_epochs(files, ctx.toolkit.checkpoint_ext)
    sized = {epoch: (fname, (weights / fname).stat().st_size) for epoch, fname in found.items()}
    return choose_resume_point(sized, _completed_epoch(ctx, name), ctx.resume_epoch, where=f"{name}/weights/")


def _completed_epoch(ctx: Context, name: str) -> int | None:
    """The last epoch the training log (or status.json) says finished, across earlier resumes."""
    model = ctx.config.model
    log = f"{name}/{ctx.network.training_csv(model.arch, model.nlayers)}"
    epochs = [row.epoch for path in (log, history_copy(log)) if ctx.workspace.host(path).is_file()
              for row in parsers.parse_training_csv(ctx.workspace.host(path).read_text(encoding="utf-8"))]
    status = ctx.workspace.host(f"{name}/status.json")
    if status.is_file():
        epochs += [int(e["epoch"]) for e in parsers.parse_status_json(status.read_text(encoding="utf-8"))
                   if isinstance(e.get("epoch"), int) and e.get("status") in ("RUNNING", "SUCCESS")]
    return max(epochs) if epochs else None


def _train_plan(ctx: Context, *, name: str, train: TrainConfig, start_model: list[str], inputs: tuple,
                run_inputs: tuple) -> StagePlan:
    spec_path = f"specs/{name}.txt"
    model = ctx.config.model
    log = f"{name}/{ctx.network.training_csv(model.arch, model.nlayers)}"
    head = [*ctx.command("train"), "-e", ctx.container(spec_path), "-r", ctx.container(name), *ctx.key_args()]
    tail = ["--gpus", "1"] + (["--use_amp"] if train.use_amp else [])
    fresh = (*head, *start_model, *tail)
    point = _resume_point(ctx, name)
    resume: dict = {}
    if point is not None:
        checkpoint = f"{name}/weights/{point.checkpoint}"
        argv = (*head, "-m", ctx.container(checkpoint), "--initial_epoch", str(point.epoch + 1), *tail)
        resume = {"resumed_from": {"epoch": point.epoch, "checkpoint": checkpoint, "reason": point.reason},
                  "clean": ()}
    return StagePlan(
        image=ctx.image,
        argv=argv if point is not None else fresh,
        fresh_argv=fresh if point is not None else None,
        specs={spec_path: experiment_spec(ctx, train, source=name)},
        inputs=inputs,
        run_inputs=("data/kitti", "data/tfrecords", *run_inputs),
        outputs=(name, log),
        clean=resume.get("clean", (name,)),
        resumed_from=resume.get("resumed_from"),
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
    rows = _merged_history(ctx, f"{results}/{ctx.network.training_csv(model.arch, model.nlayers)}")
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


def _merged_history(ctx: Context, log: str) -> list[parsers.EpochRow]:
    """The training log of every epoch: rows kept from before a resume, then this run's rows.
    The merged log is written back so plots and later reads see all epochs."""
    path, old_path = ctx.workspace.host(log), ctx.workspace.host(history_copy(log))
    rows = parsers.parse_training_csv(path.read_text(encoding="utf-8")) if path.exists() else []
    if not old_path.exists():
        return rows
    merged = parsers.merge_history(parsers.parse_training_csv(old_path.read_text(encoding="utf-8")), rows)
    if len(merged) != len(rows):
        write_atomic(path, _format_csv(merged))
    old_path.unlink()
    return merged


def keep_history(ctx: Context, plan: StagePlan) -> None:
    """Before a resumed run: fold the current training log into the history copy TAO will not touch."""
    if plan.resumed_from is None:
        return
    log = next(o for o in plan.outputs if o.endswith(".csv"))
    path, old_path = ctx.workspace.host(log), ctx.workspace.host(history_copy(log))
    if not path.exists():
        return
    rows = parsers.parse_training_csv(path.read_text(encoding="utf-8"))
    if old_path.exists():
        rows = parsers.merge_history(parsers.parse_training_csv(old_path.read_text(encoding="utf-8")), rows)
    write_atomic(old_path, _format_csv(rows))


def _format_csv(rows: list[parsers.EpochRow]) -> str:
    """A training log in TAO's layout: epoch, AP_<class>..., loss, lr, mAP, validation_loss (keys sorted)."""
    classes = sorted({c for row in rows for c in row.ap})
    columns = sorted([f"AP_{c}" for c in classes] + ["loss", "lr", "mAP", "validation_loss"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *columns])
    for row in rows:
        values = {"loss": row.loss, "lr": row.lr, "mAP": row.map, "validation_loss": row.validation_loss,
                  **{f"AP_{c}": row.ap.get(c) for c in classes}}
        writer.writerow([row.epoch, *("nan" if values[c] is None else values[c] for c in columns)])
    return out.getvalue()


def collect_train(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    return collect_training(ctx, "train", chosen_epoch=ctx.config.evaluate.epoch)


def collect_retrain(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    return collect_training(ctx, "retrain", chosen_epoch=None)


TRAIN = Stage(name="train", needs=("tfrecords",), plan=plan_train, collect=collect_train, before_run=keep_history,
              description="train from the pretrained model")
RETRAIN = Stage(name="retrain", needs=("prune",), plan=plan_retrain, collect=collect_retrain, before_run=keep_history,
                description="retrain the pruned model")
