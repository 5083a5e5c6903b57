"""train: `<net> train` with the rendered experiment spec; picks the best checkpoint. The training
machinery here is shared with retrain (stages/retrain.py).

How the starting model reaches train, and how a run resumes, is the network's answer
(Network.model_passing, networks/passing.py); this stage only asks it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlt_pipe import parsers
from tlt_pipe.config import TrainConfig
from tlt_pipe.errors import ConfigError
from tlt_pipe.manifest import write_atomic
from tlt_pipe.resume import ResumePoint, choose_resume_point
from tlt_pipe.stages import PENDING_EPOCH, Artifact, Context, Outcome, Stage, StagePlan, anchors, prepare, tfrecords
from tlt_pipe.stages.anchors import shapes as anchor_shapes
from tlt_pipe.stages.tfrecords import data_context

# What a training run (train or retrain) reads: the prepared dataset, its TFRecords and the anchor shapes.
TRAINING_READS = (*tfrecords.DATASET, tfrecords.RECORDS, tfrecords.VAL_RECORDS, *anchors.SHAPES.values())


def spec_path(name: str) -> str:
    """The experiment spec of a training run (train or retrain), which later stages read too."""
    return f"specs/{name}.txt"


def experiment_spec(ctx: Context, train: TrainConfig, *, source: str, start: dict | None = None) -> str:
    """The experiment spec for train (source='train') or retrain (source='retrain').

    start: the spec's view of the start model (ModelPassing.start_in_spec)."""
    overrides = {**ctx.config.spec_overrides.get("experiment", {}),
                 **ctx.config.spec_overrides.get("retrain" if source.startswith("retrain") else "train", {})}
    from tlt_pipe.specs import build_spec  # jinja2 and protobuf: only when a spec is rendered

    return build_spec(
        f"{ctx.network.family}/experiment.txt.j2",
        {"network": ctx.network.name, "model": ctx.config.model, "train": train,
         "data": data_context(ctx, records=True),
         "start": start or {}, "anchors": anchor_shapes(ctx), "toolkit": ctx.toolkit.version,
         "schema": ctx.toolkit.schema,
         "legacy": ctx.network.tlt2_layout(ctx.toolkit.version)},
        schema=ctx.toolkit.schema,
        kind=ctx.network.name,
        overrides=overrides,
        check=ctx.network.check_spec,
        source=source,
    )


def history_copy(log: str) -> str:
    """Where the training log of the epochs before a resume is kept (TAO overwrites the CSV)."""
    return str(Path(log).parent / ".history" / Path(log).name)


def _checkpoint_dir(ctx: Context, name: str) -> tuple[str, str]:
    """(run-relative folder, extension) of the checkpoints a training run can resume from."""
    return ctx.network.model_passing.checkpoints(name, ctx.toolkit.checkpoint_ext)


def _resume_point(ctx: Context, name: str) -> ResumePoint | None:
    """Where an unfinished training run continues from, or None to start over."""
    unfinished = ctx.statuses.get(name) in ("failed", "interrupted", "running")
    wanted = ctx.resume_epoch is not None or ctx.extend or (ctx.resume and unfinished)
    folder, ext = _checkpoint_dir(ctx, name)
    weights = ctx.workspace.host(folder)
    if not wanted or not weights.is_dir():
        if ctx.resume_epoch is not None:
            raise ConfigError(f"--resume-epoch {ctx.resume_epoch}: {folder}/ has no checkpoints to resume from")
        return None
    files = [p.name for p in weights.iterdir() if p.is_file()]  # not a folder, a dangling link or a loop
    found = parsers.checkpoint_epochs(files, ext)
    sized = {epoch: (fname, (weights / fname).stat().st_size) for epoch, fname in found.items()}
    point = choose_resume_point(sized, _completed_epoch(ctx, name), ctx.resume_epoch, where=f"{folder}/")
    if point is not None and ctx.network.model_passing.final_model_only and found and point.epoch != max(found):
        raise ConfigError(f"--resume-epoch {point.epoch}: {ctx.network.name} always resumes from its newest "
                          f"checkpoint ({folder}/{found[max(found)]}); remove the newer ones to go back further")
    return point


def _completed_epoch(ctx: Context, name: str) -> int | None:
    """The last epoch the training log (or status.json) says finished, across earlier resumes."""
    model = ctx.config.model
    log = f"{name}/{ctx.network.training_csv(model.arch, model.nlayers)}"
    epochs = [row.epoch for path in (log, history_copy(log)) if ctx.workspace.host(path).is_file()
              for row in _read_log(ctx.workspace.host(path), parsers.parse_training_csv)]
    status = ctx.workspace.host(f"{name}/status.json")
    if status.is_file():
        epochs += [int(e["epoch"]) for e in _read_log(status, parsers.parse_status_json)
                   if isinstance(e.get("epoch"), int) and e.get("status") in ("RUNNING", "SUCCESS")]
    return max(epochs) if epochs else None


def _read_log(path: Path, parse: Callable[[str], list[Any]]) -> list[Any]:
    """A training log's rows; a damaged one is a ConfigError naming it (resuming needs to know the last
    epoch it finished)."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read this training log, which resuming needs ({exc}); restore it or "
                          "move it away") from None


def promised_model(ctx: Context, results: str) -> str:
    """The model a training run leaves: DetectNet_v2's final weights, else the checkpoint of the epoch
    it selects (pending until the run ends)."""
    if ctx.network.model_passing.final_model_only:
        return f"{results}/weights/{ctx.network.checkpoint_prefix}.{ctx.toolkit.checkpoint_ext}"
    model = ctx.config.model
    name = ctx.network.checkpoint_name(model.arch, model.nlayers, PENDING_EPOCH, ctx.toolkit.checkpoint_ext)
    return f"{results}/weights/{name}"


def _training_config(ctx: Context, name: str) -> TrainConfig:
    return ctx.config.train if name == "train" else ctx.config.retrain_resolved


def resume_spec_path(name: str) -> str:
    return f"specs/{name}.resume.txt"


def train_plan(ctx: Context, *, name: str, train: TrainConfig, start_model: str | None, inputs: tuple,
               run_inputs: tuple) -> StagePlan:
    """The plan of a training run called name (train, retrain) from start_model (a container path)."""
    spec = spec_path(name)
    model = ctx.config.model
    passing = ctx.network.model_passing
    start = passing.start_in_spec(name, start_model)
    tail = ["--gpus", "1"] + (["--use_amp"] if train.use_amp else [])

    def command(spec_file: str, *model_args: str) -> tuple[str, ...]:
        return (*ctx.command("train"), "-e", ctx.container(spec_file), "-r", ctx.container(name), *ctx.key_args(),
                *model_args, *tail)

    fresh = command(spec, *passing.start_args(start_model))
    outputs: tuple[str, ...] = (name,)
    if not passing.final_model_only:
        outputs += (f"{name}/{ctx.network.training_csv(model.arch, model.nlayers)}",)
    point = _resume_point(ctx, name)
    argv, resumed_from = fresh, None
    if point is not None:
        folder, _ = _checkpoint_dir(ctx, name)
        checkpoint = f"{folder}/{point.checkpoint}"
        resumed_from = {"epoch": point.epoch, "checkpoint": checkpoint, "reason": point.reason}
        if passing.resume_spec:
            argv = command(resume_spec_path(name))
        else:  # flags, or nothing: a results folder continues by itself
            argv = command(spec, *passing.resume_args(ctx.container(checkpoint), point.epoch))
    return StagePlan(
        image=ctx.image,
        argv=argv,
        fresh_argv=fresh if argv != fresh else None,
        specs={spec: experiment_spec(ctx, train, source=name, start=start)},
        epochs=train.epochs,
        fingerprint_specs={spec: experiment_spec(ctx, train.model_copy(update={"epochs": 1}), source=name,
                                                      start=start)},
        inputs=inputs,
        run_inputs=(ctx.read(prepare.ROOT), str(Path(ctx.read(tfrecords.RECORDS)).parent), *run_inputs),
        outputs=outputs,
        clean=() if point is not None else (name,),
        resumed_from=resumed_from,
    )


def plan_train(ctx: Context) -> StagePlan:
    if ctx.network.model_passing.final_model_only and ctx.config.evaluate.epoch is not None:
        raise ConfigError(f"evaluate.epoch: {ctx.network.name} keeps only its final model, so no epoch can be "
                          "chosen; remove evaluate.epoch")
    pretrained = ctx.config.model.pretrained
    start = ctx.workspace.input_path("pretrained") if pretrained else None
    return train_plan(ctx, name="train", train=ctx.config.train, start_model=start,
                      inputs=(pretrained,) if pretrained else (), run_inputs=())


def _collect_final_model(ctx: Context, results: str, log_text: str) -> Outcome:
    """DetectNet_v2: the final weights/<model>.<ext>; mAP from the last validation it printed (in %)."""
    final = promised_model(ctx, results)
    if not ctx.workspace.host(final).is_file():
        raise ValueError(f"training wrote no final model {final}")
    folder = ctx.workspace.host(results)
    epochs = parsers.checkpoint_epochs([p.name for p in folder.iterdir()], _checkpoint_dir(ctx, results)[1])
    last = max(epochs, default=_training_config(ctx, results).epochs)
    result = parsers.parse_detectnet_eval(log_text)
    metrics = {
        "epochs": last, "best_epoch": last, "selected_by": "final model",
        "mAP": round(result.map / 100, 6) if result else None,
        "ap": {c: round(v / 100, 6) for c, v in result.ap.items()} if result else {},
        "loss": None, "checkpoints": len(epochs), "params": parsers.parse_total_params(log_text),
    }
    return Outcome(metrics=metrics, artifacts={"model": final, "epoch": last})


def collect_training(ctx: Context, results: str, *, chosen_epoch: int | None, log_text: str = "") -> Outcome:
    """Best checkpoint of a results directory: highest mAP in the log (ties: later), else the last one."""
    if ctx.network.model_passing.final_model_only:
        return _collect_final_model(ctx, results, log_text)
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
        "params": parsers.parse_total_params(log_text),
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


def before_training(ctx: Context, plan: StagePlan) -> None:
    """Before a resumed run: write the resume spec (YOLO) and keep the training log history."""
    if plan.resumed_from is None:
        return
    name = plan.outputs[0]
    if ctx.network.model_passing.resume_spec:
        start = {"field": "resume_model_path", "path": ctx.container(plan.resumed_from["checkpoint"])}
        text = experiment_spec(ctx, _training_config(ctx, name), source=f"{name}.resume", start=start)
        write_atomic(ctx.workspace.host(resume_spec_path(name)), text)
    keep_history(ctx, plan)


def keep_history(ctx: Context, plan: StagePlan) -> None:
    """Before a resumed run: fold the current training log into the history copy TAO will not touch."""
    if plan.resumed_from is None:
        return
    log = next((o for o in plan.outputs if o.endswith(".csv")), None)
    if log is None:
        return
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
    return collect_training(ctx, "train", chosen_epoch=ctx.config.evaluate.epoch, log_text=log_text)


MODEL = Artifact("train", "model", promise=lambda ctx: promised_model(ctx, "train"))
EPOCH = Artifact("train", "epoch")  # of the selected checkpoint
SPEC = Artifact("train", "spec", promise=lambda ctx: spec_path("train"))

TRAIN = Stage(name="train", plan=plan_train, collect=collect_train, before_run=before_training,
              description="train from the pretrained model", reads=TRAINING_READS, produces=(MODEL, EPOCH, SPEC))
