"""TAO's PyTorch detectors (rtdetr, dino) in the toolkit's PyTorch image: one YAML experiment spec per stage,
written from a dict, and the command `<net> <task> -e <spec> results_dir=<dir>` (Hydra overrides).

    prepare (COCO) -> train -> evaluate -> export (ONNX) -> engine (gen_trt_engine, Deploy image)
        -> evaluate_engine -> inference (checkpoint) -> inference_engine

- Checkpoints: the task writes `train/model_epoch_NNN.pth` (NNN from 000, tltpipe's epoch NNN + 1) and links
  `<net>_model_latest.pth` to the newest. The best epoch has the highest val_mAP50 in train/status.json
  (evaluate.epoch picks one; without any validation, the newest). A checkpoint cut off mid-write is not a
  complete zip archive (what torch.save writes) and is never chosen.
- Resume: `train.resume_training_checkpoint_path` is the newest complete checkpoint. A fresh training empties
  train/ first, since the task would otherwise continue from whatever checkpoint it finds there.
- The key (TLTPIPE_KEY), when set, goes to the task as the `encryption_key=` override: never into a spec file.
- Every spec is checked against tltpipe's table of NVIDIA's experiment config (pyt_schema) before any
  container starts, spec_overrides included, each problem naming its key path.
- num_classes is the number of classes plus one: the COCO category ids tltpipe writes are 1..N and the task
  uses them as class indices.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tlt_pipe import parsers, provenance
from tlt_pipe.stages import PENDING_EPOCH, Artifact, Context, Outcome, Stage, StagePlan, checkpoint_of_epoch, prepare

TRAIN, EVALUATE, EXPORT, ENGINE = "train", "evaluate", "export", "engine"
EVALUATE_ENGINE, INFERENCE, INFERENCE_ENGINE = "evaluate_engine", "infer", "infer_engine"
CLASSMAP = "specs/classmap.txt"  # the class names, one a line, in category-id order (inference draws them)


def checkpoint_name(epoch: int | str) -> str:
    """train/ file of tltpipe's epoch (from 1); a str epoch (<best>) is written as is."""
    return f"model_epoch_{epoch if isinstance(epoch, str) else f'{epoch - 1:03d}'}.pth"


MODEL = Artifact("train", "model", promise=lambda ctx: f"{TRAIN}/{checkpoint_name(PENDING_EPOCH)}")
ONNX = Artifact("export", "model", promise=lambda ctx: f"{EXPORT}/{ctx.network.name}.onnx")
ENGINE_FILE = Artifact("engine", "engine",
                       promise=lambda ctx: f"{ENGINE}/{ctx.network.name}.{ctx.config.engine.data_type}.engine")
PROVENANCE = Artifact("engine", "provenance", in_metrics=True)  # the GPU and TensorRT it was built with
MODEL_MAP = Artifact("evaluate", "mAP", in_metrics=True)  # the checkpoint's, beside the engine's


# --- pure helpers ------------------------------------------------------------------------------

def checkpoints(train_dir: Path) -> list[dict[str, Any]]:
    """Every complete checkpoint in train_dir: [{epoch (from 1), checkpoint (file name)}], by epoch."""
    found = []
    for path in train_dir.glob("model_epoch_*.pth"):
        number = path.stem.rsplit("_", 1)[-1]
        if number.isdigit() and not path.is_symlink() and zipfile.is_zipfile(path):
            found.append({"epoch": int(number) + 1, "checkpoint": path.name})
    return sorted(found, key=lambda c: c["epoch"])


def history(entries: list[Mapping[str, Any]]) -> dict[int, dict[str, float]]:
    """epoch (from 1) -> {train_loss, val_mAP, val_mAP50, val_loss} from the task's status.json entries.

    An entry with an `epoch` closes that epoch: the kpi values it holds, and those of the entries since the
    epoch before it, are that epoch's. NVIDIA's status logger writes some numbers as strings."""
    rows: dict[int, dict[str, float]] = {}
    pending: dict[str, float] = {}
    for entry in entries:
        kpi = entry.get("kpi") if isinstance(entry.get("kpi"), Mapping) else {}
        for name in ("train_loss", "val_mAP", "val_mAP50", "val_loss"):
            value = _number(kpi.get(name))
            if value is not None:
                pending[name] = value
        epoch = entry.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1:
            rows[epoch] = {**rows.get(epoch, {}), **pending}
            pending = {}
    return rows


def best(found: list[dict[str, Any]], rows: Mapping[int, Mapping[str, float]], epoch: int | None) -> dict[str, Any]:
    """The checkpoint of the highest val_mAP50, the given epoch's, or the newest when no epoch with a checkpoint
    was validated. On a tie the earlier: a status logger that keeps its last kpi repeats a validation's scores
    on the epochs after it, which were not validated."""
    if not found:
        raise ValueError("the training wrote no complete checkpoint (train/model_epoch_NNN.pth)")
    if epoch is not None:
        return dict(checkpoint_of_epoch(found, epoch))
    scored = [c for c in found if "val_mAP50" in rows.get(c["epoch"], {})]
    if not scored:
        return found[-1]
    return max(scored, key=lambda c: rows[c["epoch"]]["val_mAP50"])


def set_path(spec: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a.b.c in nested dicts, making the sections on the way. A mapping given for a section is merged
    into it key by key (train: {optim: {lr: 0.5}} changes the learning rate and keeps the rest of
    train), as TAO merges a spec into its defaults; any other value, a list included, replaces."""
    *sections, last = dotted.split(".")
    node = spec
    for name in sections:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    _merge_into(node, last, value)


def _merge_into(node: dict[str, Any], key: Any, value: Any) -> None:
    if isinstance(value, Mapping) and isinstance(node.get(key), dict):
        for inner_key, inner in value.items():
            _merge_into(node[key], inner_key, inner)
    else:
        node[key] = copy.deepcopy(value)  # the config's own values are never changed by a later merge


def spec_text(spec: Mapping[str, Any]) -> str:
    import yaml

    return "# Written by tltpipe: the experiment spec of one stage (the key is never written here).\n" + yaml.safe_dump(
        dict(spec), sort_keys=False, default_flow_style=False, allow_unicode=True)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


# --- specs -------------------------------------------------------------------------------------

def _gpus(ctx: Context) -> list[int]:
    """train.gpu_ids as the task sees them: the runner gives it runner.gpus' devices, numbered from 0 (a list
    of N devices trains on N; "all" on one, unless spec_overrides says more)."""
    gpus = ctx.config.runner.gpus
    return list(range(len(gpus))) if isinstance(gpus, list) and gpus else [0]


def _classes(ctx: Context) -> list[str]:
    found = ctx.read(prepare.CLASSES)
    return list(found) if isinstance(found, list) else []


def _base(ctx: Context, results: str) -> dict[str, Any]:
    """What every stage's spec holds: where its results go, the dataset and the model."""
    cfg, root = ctx.config, ctx.read(prepare.ROOT)
    width, height = cfg.model.input_width, cfg.model.input_height
    train = {"image_dir": ctx.container(f"{root}/train/images"), "json_file": ctx.container(f"{root}/train/annotations.json")}
    val = {"image_dir": ctx.container(f"{root}/val/images"), "json_file": ctx.container(f"{root}/val/annotations.json")}
    images = ctx.workspace.input_path("images") if cfg.inference.images else val["image_dir"]
    classes = _classes(ctx)
    return {
        "results_dir": ctx.container(results),
        "dataset": {
            "train_data_sources": [train], "test_data_sources": val,
            "infer_data_sources": {"image_dir": images, "classmap": ctx.container(CLASSMAP)},
            # Before prepare has run the class count is not known: the plan shows the configured map's.
            "num_classes": (len(classes) or len(set((cfg.dataset.classes or {}).values())) or 1) + 1,
            "batch_size": cfg.train.batch_size, "workers": cfg.train.n_workers,
            **ctx.network.spec_dataset(val, width, height),
        },
        "model": {"backbone": cfg.model.arch},
    }


def _overridden(ctx: Context, spec: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    """spec_overrides (experiment: every spec; train or inference: that one; each override was checked when
    the config was read), then the pre-flight check of the whole spec."""
    from tlt_pipe.pyt_schema import check_spec

    for group in ("experiment", name):
        for dotted, value in ctx.config.spec_overrides.get(group, {}).items():
            set_path(spec, dotted, value)
    _refuse(check_spec(ctx.network.name, spec), source)
    return spec


def _refuse(problems: list[str], where: str) -> None:
    from tlt_pipe.errors import SpecError

    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SpecError(f"{where}: {problems[0]}{more}")


def _task(ctx: Context, task: str, spec_path: str, results: str) -> tuple[str, ...]:
    argv = [ctx.network.name, task, "-e", ctx.container(spec_path), f"results_dir={ctx.container(results)}"]
    if ctx.key:
        argv.append(f"encryption_key={ctx.key}")  # the runner keeps it out of logs and records
    return tuple(argv)


def _pyt_image(ctx: Context) -> str:
    image = ctx.config.runner.image or ctx.toolkit.pyt_image
    if image is None:  # pragma: no cover - the network's toolkits all have one
        raise ValueError(f"toolkit {ctx.toolkit.version} has no PyTorch image")
    return image


def _deploy_image(ctx: Context) -> str:
    if ctx.deploy_image is None:  # pragma: no cover - the network's toolkits all have one
        raise ValueError(f"toolkit {ctx.toolkit.version} has no TAO Deploy image")
    return ctx.deploy_image


def _stage_plan(ctx: Context, *, name: str, task: str, results: str, section: Mapping[str, Any], image: str,
                run_inputs: tuple[str, ...], outputs: tuple[str, ...], overrides: str = "", **extra: Any) -> StagePlan:
    spec_path = f"specs/{name}.yaml"
    spec = _base(ctx, results)
    spec[task] = {**section, "results_dir": ctx.container(results)}
    spec = _overridden(ctx, spec, overrides or name, spec_path)
    specs = {spec_path: spec_text(spec), **extra.pop("specs", {})}
    return StagePlan(image=image, argv=_task(ctx, task, spec_path, results), specs=specs,
                     run_inputs=run_inputs, outputs=outputs, clean=extra.pop("clean", (results,)), **extra)


# --- train -------------------------------------------------------------------------------------

def _train_section(ctx: Context, resume_from: str | None) -> dict[str, Any]:
    t, gpus = ctx.config.train, _gpus(ctx)
    pretrained = ctx.workspace.input_path("pretrained") if ctx.config.model.pretrained else None
    return {"num_gpus": len(gpus), "gpu_ids": gpus, "seed": t.random_seed, "num_epochs": t.epochs,
            "checkpoint_interval": min(t.checkpoint_interval, t.epochs),
            "validation_interval": min(t.validation_period, t.epochs),
            "pretrained_model_path": pretrained, "resume_training_checkpoint_path": resume_from,
            "precision": "fp16" if t.use_amp else "fp32"}


def _train_plan(ctx: Context) -> StagePlan:
    cfg, root = ctx.config, ctx.read(prepare.ROOT)
    inputs = (cfg.model.pretrained,) if cfg.model.pretrained else ()
    run_inputs = (root,)
    fresh = _stage_plan(ctx, name="train", task="train", results=TRAIN, section=_train_section(ctx, None),
                        image=_pyt_image(ctx), run_inputs=run_inputs, outputs=(TRAIN,), inputs=inputs)
    done = checkpoints(ctx.workspace.host(TRAIN)) if ctx.resume or ctx.resume_epoch else []
    if ctx.resume_epoch:
        done = [c for c in done if c["epoch"] == ctx.resume_epoch]
        if not done:
            raise ValueError(f"--resume-epoch {ctx.resume_epoch}: train/{checkpoint_name(ctx.resume_epoch)} is not a "
                             "complete checkpoint")
    if not done or done[-1]["epoch"] >= cfg.train.epochs:
        return fresh
    last = done[-1]
    checkpoint = f"{TRAIN}/{last['checkpoint']}"
    resumed = _stage_plan(ctx, name="train", task="train", results=TRAIN,
                          section=_train_section(ctx, ctx.container(checkpoint)), image=_pyt_image(ctx),
                          run_inputs=run_inputs, outputs=(TRAIN,), inputs=inputs, clean=())
    reason = "--resume-epoch" if ctx.resume_epoch else "--resume: the newest complete checkpoint"
    return replace(resumed, fresh_argv=fresh.argv, fingerprint_specs=fresh.specs,
                   resumed_from={"epoch": last["epoch"], "checkpoint": checkpoint, "reason": reason})


def _status(ctx: Context, folder: str) -> list[dict[str, Any]]:
    """The task's status.json entries; ValueError when its last word is FAILURE (TAO's PyTorch entrypoint
    can exit 0 when the task failed)."""
    try:
        entries = parsers.parse_status_json(ctx.workspace.host(f"{folder}/status.json").read_text(encoding="utf-8"))
    except OSError:
        return []
    last = next((e for e in reversed(entries) if isinstance(e.get("status"), str)), {})
    if last.get("status") == "FAILURE":
        raise ValueError(f"the task reported FAILURE in {folder}/status.json: {last.get('message') or 'no message'}")
    return entries


def _train_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    found = checkpoints(ctx.workspace.host(TRAIN))
    rows = history(_status(ctx, TRAIN))
    chosen = best(found, rows, ctx.config.evaluate.epoch)
    scores = rows.get(chosen["epoch"], {})
    epochs = [{"epoch": c["epoch"], "checkpoint": f"{TRAIN}/{c['checkpoint']}", **rows.get(c["epoch"], {})} for c in found]
    metrics = {"epochs": epochs, "best_epoch": chosen["epoch"], "epoch": found[-1]["epoch"],
               "mAP": scores.get("val_mAP50"), "val_mAP": scores.get("val_mAP"),
               "loss": rows[max(rows)].get("train_loss") if rows else None}
    return Outcome(metrics=metrics, artifacts={"model": f"{TRAIN}/{chosen['checkpoint']}"})


# --- evaluate, export, engine, inference ------------------------------------------------------------

def _evaluate_plan(ctx: Context) -> StagePlan:
    model = ctx.read(MODEL)
    return _stage_plan(ctx, name="evaluate", task="evaluate", results=EVALUATE, image=_pyt_image(ctx),
                       section={"checkpoint": ctx.container(model)}, run_inputs=(model, ctx.read(prepare.ROOT)),
                       outputs=(EVALUATE,))


def _evaluate_engine_plan(ctx: Context) -> StagePlan:
    engine = ctx.read(ENGINE_FILE)
    return _stage_plan(ctx, name="evaluate_engine", task="evaluate", results=EVALUATE_ENGINE, overrides="evaluate",
                       image=_deploy_image(ctx), section={"trt_engine": ctx.container(engine)},
                       run_inputs=(engine, ctx.read(prepare.ROOT)), outputs=(EVALUATE_ENGINE,), probe=True)


def _evaluate_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    """The PyTorch task's COCO scores: status.json's kpi test_mAP50 and test_mAP."""
    kpi: dict[str, Any] = {}
    for entry in _status(ctx, EVALUATE):
        if isinstance(entry.get("kpi"), Mapping):
            kpi.update(entry["kpi"])
    return _scored(_number(kpi.get("test_mAP50")), _number(kpi.get("test_mAP")), f"{EVALUATE}/status.json")


def _evaluate_engine_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    """TAO Deploy writes the engine's COCO scores into results.json (AP50, AP), none into status.json."""
    _status(ctx, EVALUATE_ENGINE)
    path = f"{EVALUATE_ENGINE}/results.json"
    try:
        scores = json.loads(ctx.workspace.host(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        scores = {}
    scores = scores if isinstance(scores, Mapping) else {}
    measured = _scored(_number(scores.get("AP50")), _number(scores.get("AP")), path).metrics
    used, warnings = provenance.ran_on(ctx.read(PROVENANCE), log_text)
    metrics = provenance.beside_model(measured, ctx.config.engine.data_type, used, ctx.read(MODEL_MAP))
    return Outcome(metrics=metrics, artifacts={}, warnings=warnings)


def _scored(map50: float | None, map_all: float | None, where: str) -> Outcome:
    if map50 is None:
        raise ValueError(f"the evaluation wrote no mAP at IoU 0.5 into {where}")
    return Outcome(metrics={"mAP": map50, "mAP50_95": map_all}, artifacts={})


def _export_plan(ctx: Context) -> StagePlan:
    model, onnx = ctx.read(MODEL), ONNX.promise(ctx)
    section = {"checkpoint": ctx.container(model), "onnx_file": ctx.container(onnx),
               "input_width": ctx.config.model.input_width, "input_height": ctx.config.model.input_height}
    return _stage_plan(ctx, name="export", task="export", results=EXPORT, image=_pyt_image(ctx), section=section,
                       run_inputs=(model,), outputs=(onnx,))


def _export_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    _status(ctx, EXPORT)
    onnx = ONNX.promise(ctx)
    return Outcome(metrics={"onnx_bytes": ctx.workspace.host(onnx).stat().st_size}, artifacts={"model": onnx})


_TRT_TYPES = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


def _engine_plan(ctx: Context) -> StagePlan:
    e, onnx, engine = ctx.config.engine, ctx.read(ONNX), ENGINE_FILE.promise(ctx)
    tensorrt: dict[str, Any] = {"data_type": _TRT_TYPES[e.data_type], "min_batch_size": 1,
                                "opt_batch_size": e.opt_batch_size or e.max_batch_size, "max_batch_size": e.max_batch_size}
    if e.workspace_mb:
        tensorrt["workspace_size"] = e.workspace_mb
    if e.data_type == "int8":
        root = ctx.read(prepare.ROOT)
        tensorrt["calibration"] = {"cal_image_dir": [ctx.container(f"{root}/train/images")],
                                   "cal_cache_file": ctx.container(f"{ENGINE}/cal.bin"),
                                   "cal_batch_size": e.cal_batch_size or 1, "cal_batches": e.cal_batches}
    section = {"onnx_file": ctx.container(onnx), "trt_engine": ctx.container(engine), "tensorrt": tensorrt}
    return _stage_plan(ctx, name="engine", task="gen_trt_engine", results=ENGINE, image=_deploy_image(ctx),
                       section=section, run_inputs=(onnx,), outputs=(engine,), probe=True)


def _engine_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    _status(ctx, ENGINE)
    e, engine = ctx.config.engine, ENGINE_FILE.promise(ctx)
    built = {**provenance.parse(log_text), "precision": e.data_type, "max_batch_size": e.max_batch_size,
             "opt_batch_size": e.opt_batch_size or e.max_batch_size, "builder": "gen_trt_engine", "image": plan_.image}
    return Outcome(metrics={"engine": engine, "engine_bytes": ctx.workspace.host(engine).stat().st_size,
                            "precision": e.data_type, "provenance": built}, artifacts={"engine": engine})


def _inference_section(ctx: Context, model_key: str, model: str) -> dict[str, Any]:
    return {model_key: ctx.container(model), "conf_threshold": ctx.config.inference.threshold,
            "input_width": ctx.config.model.input_width, "input_height": ctx.config.model.input_height}


def _classmap(ctx: Context) -> dict[str, str]:
    return {CLASSMAP: "".join(f"{name}\n" for name in _classes(ctx))}


def _inference_plan(ctx: Context) -> StagePlan:
    model = ctx.read(MODEL)
    return _stage_plan(ctx, name="inference", task="inference", results=INFERENCE, image=_pyt_image(ctx),
                       section=_inference_section(ctx, "checkpoint", model), run_inputs=(model,),
                       outputs=(INFERENCE,), specs=_classmap(ctx), inputs=_images(ctx))


def _inference_engine_plan(ctx: Context) -> StagePlan:
    engine = ctx.read(ENGINE_FILE)
    return _stage_plan(ctx, name="inference_engine", task="inference", results=INFERENCE_ENGINE, overrides="inference",
                       image=_deploy_image(ctx), section=_inference_section(ctx, "trt_engine", engine),
                       run_inputs=(engine,), outputs=(INFERENCE_ENGINE,), specs=_classmap(ctx), inputs=_images(ctx),
                       probe=True)


def _images(ctx: Context) -> tuple[Path, ...]:
    return (ctx.config.inference.images,) if ctx.config.inference.images else ()


def _inference_collect(folder: str):
    def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
        _status(ctx, folder)
        labels = ctx.workspace.host(f"{folder}/labels")
        count = sum(1 for _ in labels.glob("*.txt")) if labels.is_dir() else 0
        if count == 0:
            raise ValueError(f"the inference wrote no label file into {folder}/labels")
        if folder == INFERENCE:
            return Outcome(metrics={"images": count}, artifacts={"results": folder})
        used, warnings = provenance.ran_on(ctx.read(PROVENANCE), log_text)
        return Outcome(metrics={"images": count, "precision": ctx.config.engine.data_type, "ran_on": used},
                       artifacts={"results": folder}, warnings=warnings)
    return collect


TRAIN_STAGE = Stage(name="train", plan=_train_plan, collect=_train_collect, reads=(prepare.ROOT, prepare.CLASSES),
                    produces=(MODEL,), description="train in the PyTorch image (best epoch by val_mAP50)")
EVALUATE_STAGE = Stage(name="evaluate", plan=_evaluate_plan, collect=_evaluate_collect, produces=(MODEL_MAP,),
                       reads=(MODEL, prepare.ROOT, prepare.CLASSES), description="COCO mAP of the best checkpoint")
EXPORT_STAGE = Stage(name="export", plan=_export_plan, collect=_export_collect, produces=(ONNX,),
                     reads=(MODEL, prepare.ROOT, prepare.CLASSES), description="ONNX of the best checkpoint")
ENGINE_STAGE = Stage(name="engine", plan=_engine_plan, collect=_engine_collect, produces=(ENGINE_FILE, PROVENANCE),
                     reads=(ONNX, prepare.ROOT, prepare.CLASSES), description="TensorRT engine (gen_trt_engine)")
EVALUATE_ENGINE_STAGE = Stage(name="evaluate_engine", plan=_evaluate_engine_plan, collect=_evaluate_engine_collect,
                              reads=(ENGINE_FILE, PROVENANCE, MODEL_MAP, prepare.ROOT, prepare.CLASSES),
                              description="COCO mAP of the engine, beside the checkpoint's")
INFERENCE_STAGE = Stage(name="inference", plan=_inference_plan, collect=_inference_collect(INFERENCE),
                        reads=(MODEL, prepare.ROOT, prepare.CLASSES), description="boxes drawn by the checkpoint")
INFERENCE_ENGINE_STAGE = Stage(name="inference_engine", plan=_inference_engine_plan,
                               collect=_inference_collect(INFERENCE_ENGINE),
                               reads=(ENGINE_FILE, PROVENANCE, prepare.ROOT, prepare.CLASSES),
                               description="boxes drawn by the engine")
STAGES = (prepare.STAGE, TRAIN_STAGE, EVALUATE_STAGE, EXPORT_STAGE, ENGINE_STAGE, EVALUATE_ENGINE_STAGE,
          INFERENCE_STAGE, INFERENCE_ENGINE_STAGE)
