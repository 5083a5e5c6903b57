"""ssd_mobilenet: jetson-inference's pytorch-ssd scripts from the user's checkout (pytorch_ssd.repo).

    prepare (VOC) -> train (train_ssd.py) -> evaluate (eval_ssd.py) -> export (onnx_export.py) -> detectnet

- Flags: versions of the scripts differ (newer ones add --resolution, --validation-mean-ap, --log-level), so
  tltpipe reads the `add_argument("--...")` declarations of the checkout's train_ssd.py and passes an optional
  flag only when the script declares it.
- Checkpoints: train_ssd.py writes `<net>-Epoch-<N>-Loss-<validation loss>.pth` at each validation, N from 0.
  tltpipe counts epochs from 1 (epoch N+1), as for TAO. The best checkpoint has the lowest validation loss
  (`evaluate.epoch` picks one); a file cut off mid-write (not a complete zip archive) is never chosen.
- Resume: train_ssd.py's --resume loads the weights and counts epochs from 0 again, so tltpipe passes the
  epochs left, first moves the earlier checkpoints to `train/part-<epochs done>/` (nothing is overwritten)
  and writes the offset to `train/.epoch-offset`.
- Export: onnx_export.py puts its input on CUDA unconditionally. With no GPU (runner.gpus 0 or none, or
  pytorch_ssd.export_device: cpu) tltpipe runs the same script with `.cuda()` kept on the CPU and checkpoints
  loaded to the CPU (CPU_EXPORT). tltpipe then checks the ONNX with onnx.checker and runs it once with
  onnxruntime on a validation image (input_0 -> scores, boxes), when those packages are installed.
- detectnet: the command line for jetson-inference's detectnet (TensorRT) on the Jetson, written to
  `detectnet/run.sh`, and run when `detectnet` is on this machine's PATH.
"""

from __future__ import annotations

import csv
import io
import re
import shlex
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlt_pipe import parsers
from tlt_pipe.networks.ssd_mobilenet import ONNX_BOXES, ONNX_INPUT, ONNX_SCORES
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, checkpoint_of_epoch, prepare

TRAIN, EVALUATE, EXPORT, DETECTNET = "train", "evaluate", "export", "detectnet"
OFFSET_FILE = f"{TRAIN}/.epoch-offset"
ONNX_FILE = f"{EXPORT}/ssd-mobilenet.onnx"
LABELS_FILE = f"{TRAIN}/labels.txt"  # train_ssd.py writes it (BACKGROUND first)
HISTORY_CSV = f"{TRAIN}/pytorch_training_log_ssd.csv"  # epoch, loss, validation_loss: what `report` draws

MODEL = Artifact("train", "model")  # the best checkpoint, run-relative
ONNX = Artifact("export", "model", promise=lambda ctx: ONNX_FILE)
RUN_SCRIPT = Artifact("detectnet", "script", promise=lambda ctx: f"{DETECTNET}/run.sh")

# onnx_export.py on a machine without CUDA: its .cuda() calls keep tensors and modules on the CPU and
# checkpoints saved on a GPU load to the CPU; then the script runs as itself (runpy, __main__).
CPU_EXPORT = "; ".join((
    "import runpy, sys, torch",
    "torch.Tensor.cuda = lambda self, *args, **kwargs: self",
    "torch.nn.Module.cuda = lambda self, *args, **kwargs: self",
    "_load = torch.load",
    "torch.load = lambda *args, **kwargs: _load(*args, **{'map_location': 'cpu', **kwargs})",
    "sys.argv = sys.argv[1:]",
    "runpy.run_path(sys.argv[0], run_name='__main__')",
))
_FLAG = re.compile(r"""add_argument\(\s*(?:['"]-\w['"]\s*,\s*)?((?:['"]--[\w-]+['"]\s*,?\s*)+)""")


# --- pure helpers ------------------------------------------------------------------------------

def declared_flags(source: str) -> frozenset[str]:
    """The --flags a script's argparse declares (each add_argument's option strings)."""
    return frozenset(flag for group in _FLAG.findall(source) for flag in re.findall(r"--[\w-]+", group))


def checkpoints(train_dir: Path) -> list[dict[str, Any]]:
    """Every complete checkpoint of the training, with its epoch counted from 1 across resumed attempts:
    [{epoch, validation_loss, checkpoint (run-relative to train_dir's parent)}], by epoch."""
    found = []
    parts = [(train_dir, _offset(train_dir / Path(OFFSET_FILE).name))]
    parts += [(p, int(p.name.split("-", 1)[1])) for p in train_dir.glob("part-*") if p.name.split("-", 1)[1].isdigit()]
    for folder, offset in parts:
        for path in folder.glob("*.pth"):
            parsed = parsers.parse_pytorch_ssd_checkpoint(path.name)
            if parsed is None or not zipfile.is_zipfile(path):  # torch.save writes a zip; a cut-off one is not
                continue
            found.append({"epoch": offset + parsed[1] + 1, "validation_loss": parsed[2],
                          "checkpoint": str(path.relative_to(train_dir.parent))})
    return sorted(found, key=lambda c: c["epoch"])


def _offset(path: Path) -> int:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0


def best(found: list[dict[str, Any]], epoch: int | None) -> dict[str, Any]:
    """The checkpoint with the lowest validation loss (the later on a tie), or the given epoch's."""
    if not found:
        raise ValueError("train_ssd.py wrote no complete checkpoint (<net>-Epoch-N-Loss-X.pth)")
    if epoch is not None:
        return dict(checkpoint_of_epoch(found, epoch))
    return min(reversed(found), key=lambda c: c["validation_loss"])


def epoch_losses(log_text: str, offset: int) -> dict[int, dict[str, float]]:
    """epoch (from 1) -> {loss: the last running average, validation_loss} from train_ssd.py's log."""
    rows: dict[int, dict[str, float]] = {}
    for line in log_text.splitlines():
        step = parsers.parse_pytorch_ssd_line(line)
        if step is None:
            continue
        row = rows.setdefault(offset + step.epoch + 1, {})
        if step.loss is not None:
            row["loss"] = step.loss
        if step.validation_loss is not None:
            row["validation_loss"] = step.validation_loss
    return rows


def history_csv(rows: dict[int, dict[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", "loss", "validation_loss"])
    for epoch in sorted(rows):
        writer.writerow([epoch, rows[epoch].get("loss", "nan"), rows[epoch].get("validation_loss", "nan")])
    return out.getvalue()


def detectnet_script(onnx: str, labels: str, images: str) -> str:
    """jetson-inference's detectnet on the exported model (paths relative to the script's folder)."""
    command = ["detectnet", f"--model={onnx}", f"--labels={labels}", f"--input-blob={ONNX_INPUT}",
               f"--output-cvg={ONNX_SCORES}", f"--output-bbox={ONNX_BOXES}"]
    return ("#!/bin/sh\n"
            "# tltpipe: the exported SSD-Mobilenet through jetson-inference's detectnet (TensorRT), on a Jetson.\n"
            "# Usage: sh run.sh [INPUT (images, a glob in quotes, a video or a camera)] [OUTPUT]\n"
            'cd "$(dirname "$0")" || exit 1\n'
            f'exec {shlex.join(command)} "${{1:-{images}}}" "${{2:-output/detection_%i.jpg}}"\n')


# --- where things are --------------------------------------------------------------------------

def _repo(ctx: Context) -> Path:
    return Path(ctx.config.pytorch_ssd.repo or ".")


def _script(ctx: Context, name: str) -> str:
    return f"{ctx.workspace.input_path('pytorch_ssd')}/{name}"


def _flags(ctx: Context) -> frozenset[str]:
    try:
        return declared_flags((_repo(ctx) / "train_ssd.py").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return frozenset()


def _on_gpu(ctx: Context) -> bool:
    """Whether the scripts get a CUDA GPU: not with runner.gpus 0 or none, nor on a host without nvidia-smi."""
    if ctx.config.runner.no_gpus:
        return False
    return ctx.config.runner.kind != "local" or shutil.which("nvidia-smi") is not None


def _image(ctx: Context) -> str:
    return ctx.config.runner.image or "local"


def _model_flags(ctx: Context) -> list[str]:
    return ["--net", ctx.config.pytorch_ssd.net]


# --- train -------------------------------------------------------------------------------------

def _train_plan(ctx: Context) -> StagePlan:
    cfg, ps = ctx.config, ctx.config.pytorch_ssd
    flags = _flags(ctx)
    root = ctx.read(prepare.ROOT)
    pretrained = ctx.workspace.input_path("pretrained_ssd") if ps.pretrained else ""
    argv = [ps.python, _script(ctx, "train_ssd.py"), "--dataset-type", "voc", "--data", ctx.container(root),
            "--model-dir", ctx.container(TRAIN), *_model_flags(ctx), "--batch-size", str(cfg.train.batch_size)]
    optional = [("--lr", repr(ps.lr)), ("--pretrained-ssd", pretrained), ("--workers", str(ps.workers)),
                ("--validation-epochs", str(ps.validation_epochs)), ("--use-cuda", str(_on_gpu(ctx)))]
    if cfg.model.input_width == cfg.model.input_height:
        optional.append(("--resolution", str(cfg.model.input_width)))
    optional.append(("--log-level", "info"))
    extra = [part for flag, value in optional if flag in flags for part in (flag, value)]
    fresh = (*argv, "--epochs", str(cfg.train.epochs), *extra)
    done = checkpoints(ctx.workspace.host(TRAIN)) if ctx.resume else []
    if done and done[-1]["epoch"] < cfg.train.epochs:
        last = done[-1]
        checkpoint = last["checkpoint"]
        if Path(checkpoint).parent == Path(TRAIN):  # where _before_train moves it
            offset = _offset(ctx.workspace.host(OFFSET_FILE))
            checkpoint = f"{TRAIN}/part-{offset}/{Path(checkpoint).name}"
        resumed = (*argv, "--epochs", str(cfg.train.epochs - last["epoch"]), *extra,
                   "--resume", ctx.container(checkpoint))
        return StagePlan(image=_image(ctx), argv=resumed, fresh_argv=fresh, inputs=_inputs(ctx), run_inputs=(root,),
                         outputs=(TRAIN,),
                         resumed_from={"epoch": last["epoch"], "checkpoint": checkpoint,
                                       "reason": "--resume: the newest complete checkpoint"})
    return StagePlan(image=_image(ctx), argv=fresh, inputs=_inputs(ctx), run_inputs=(root,), outputs=(TRAIN,),
                     clean=(TRAIN,))


def _epoch_offset(plan_: StagePlan) -> int:
    """The epochs done before this attempt (train_ssd.py counts from 0 again after --resume)."""
    return int(plan_.resumed_from["epoch"]) if plan_.resumed_from else 0


def _inputs(ctx: Context) -> tuple[Path, ...]:
    """The scripts (their content matters) and the starting weights."""
    repo = _repo(ctx)
    scripts = tuple(repo / name for name in ("train_ssd.py", "eval_ssd.py", "onnx_export.py") if (repo / name).exists())
    pretrained = (ctx.config.pytorch_ssd.pretrained,) if ctx.config.pytorch_ssd.pretrained else ()
    return scripts + pretrained


def _before_train(ctx: Context, plan_: StagePlan) -> None:
    """A resumed training counts from 0 again: the earlier checkpoints go to train/part-<offset>/ first."""
    offset = _epoch_offset(plan_)
    train = ctx.workspace.host(TRAIN)
    train.mkdir(parents=True, exist_ok=True)
    if offset:
        earlier = _offset(ctx.workspace.host(OFFSET_FILE))
        part = train / f"part-{earlier}"
        part.mkdir(exist_ok=True)
        for path in train.glob("*.pth"):
            path.replace(part / path.name)
    ctx.workspace.host(OFFSET_FILE).write_text(f"{offset}\n", encoding="utf-8")


def _train_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    train = ctx.workspace.host(TRAIN)
    found = checkpoints(train)
    chosen = best(found, ctx.config.evaluate.epoch)
    rows = {c["epoch"]: {"validation_loss": c["validation_loss"]} for c in found}  # an interrupted attempt's too
    for epoch, row in [*_earlier_rows(ctx).items(), *epoch_losses(log_text, _epoch_offset(plan_)).items()]:
        rows[epoch] = {**rows.get(epoch, {}), **row}
    (train / Path(HISTORY_CSV).name).write_text(history_csv(rows), encoding="utf-8")
    if not (train / "labels.txt").is_file():
        raise ValueError(f"train_ssd.py wrote no {LABELS_FILE}")
    last = rows[max(rows)] if rows else {}
    metrics = {"epochs": found, "best_epoch": chosen["epoch"], "validation_loss": chosen["validation_loss"],
               "loss": last.get("loss"), "epoch": max(c["epoch"] for c in found)}
    return Outcome(metrics=metrics, artifacts={"model": chosen["checkpoint"], "labels": LABELS_FILE})


def _earlier_rows(ctx: Context) -> dict[int, dict[str, float]]:
    """The history of earlier attempts (a resumed training), from the CSV they left."""
    try:
        rows = parsers.parse_training_csv(ctx.workspace.host(HISTORY_CSV).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {r.epoch: {k: v for k, v in (("loss", r.loss), ("validation_loss", r.validation_loss)) if v is not None}
            for r in rows}


# --- evaluate ----------------------------------------------------------------------------------

def _evaluate_plan(ctx: Context) -> StagePlan:
    ps, model, root = ctx.config.pytorch_ssd, ctx.read(MODEL), ctx.read(prepare.ROOT)
    argv = [ps.python, _script(ctx, "eval_ssd.py"), *_model_flags(ctx), "--trained_model", ctx.container(model),
            "--dataset_type", "voc", "--dataset", ctx.container(root), "--label_file", ctx.container(LABELS_FILE),
            "--use_cuda", str(_on_gpu(ctx)), "--eval_dir", ctx.container(EVALUATE)]
    return StagePlan(image=_image(ctx), argv=tuple(argv), inputs=_inputs(ctx), run_inputs=(model, root, LABELS_FILE),
                     outputs=(EVALUATE,), clean=(EVALUATE,))


def _evaluate_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    result = parsers.parse_pytorch_ssd_eval(log_text)
    if result is None:
        raise ValueError("eval_ssd.py printed no 'Average Precision Per-class:' block")
    return Outcome(metrics={"mAP": round(result.map, 6), "ap": {c: round(v, 6) for c, v in result.ap.items()}},
                   artifacts={})


# --- export ------------------------------------------------------------------------------------

def exports_on_cpu(ctx: Context) -> bool:
    device = ctx.config.pytorch_ssd.export_device
    return device == "cpu" or device == "auto" and not _on_gpu(ctx)


def _export_plan(ctx: Context) -> StagePlan:
    ps, m, model = ctx.config.pytorch_ssd, ctx.config.model, ctx.read(MODEL)
    script = _script(ctx, "onnx_export.py")
    args = [*_model_flags(ctx), "--input", ctx.container(model), "--output", ctx.container(ONNX_FILE),
            "--labels", ctx.container(LABELS_FILE), "--width", str(m.input_width), "--height", str(m.input_height),
            "--batch-size", "1", "--model-dir", ctx.container(TRAIN)]
    argv = [ps.python, "-c", CPU_EXPORT, script, *args] if exports_on_cpu(ctx) else [ps.python, script, *args]
    return StagePlan(image=_image(ctx), argv=tuple(argv), inputs=_inputs(ctx), run_inputs=(model, LABELS_FILE),
                     outputs=(ONNX_FILE,), clean=(EXPORT,), params={"cpu": exports_on_cpu(ctx)})


def _export_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    path = ctx.workspace.host(ONNX_FILE)
    metrics: dict[str, Any] = {"onnx_bytes": path.stat().st_size, "device": "cpu" if plan_.params.get("cpu") else "cuda"}
    warnings: tuple[str, ...] = ()
    try:
        metrics.update(check_onnx(path, _validation_image(ctx), (ctx.config.model.input_width, ctx.config.model.input_height)))
    except ImportError:
        warnings = ("the ONNX model was not checked: pip install 'tltpipe[pytorch]' (onnx, onnxruntime)",)
    return Outcome(metrics=metrics, artifacts={"model": ONNX_FILE, "labels": LABELS_FILE}, warnings=warnings)


def _validation_image(ctx: Context) -> Path | None:
    root = ctx.workspace.host(str(ctx.read(prepare.ROOT)))
    try:
        first = next(line.strip() for line in (root / "ImageSets/Main/test.txt").read_text().splitlines() if line.strip())
    except (OSError, StopIteration):
        return None
    return next(iter(sorted((root / "JPEGImages").glob(f"{first}.*"))), None)


def check_onnx(path: Path, image: Path | None, size: tuple[int, int]) -> dict[str, Any]:
    """onnx.checker, then one onnxruntime run on the image (pytorch-ssd's preprocessing: resize, (x - 127) / 128,
    CHW): its input and output names and shapes, and the highest object score (ValueError when it fails)."""
    import numpy as np  # noqa: PLC0415 - the pytorch extra
    import onnx  # noqa: PLC0415
    import onnxruntime  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    try:
        onnx.checker.check_model(onnx.load(str(path)))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnx raises its own types; any of them means a bad model
        raise ValueError(f"{path}: not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != [ONNX_INPUT] or not {ONNX_SCORES, ONNX_BOXES} <= set(outputs):
        raise ValueError(f"{path}: input {inputs} and outputs {outputs}; detectnet expects {ONNX_INPUT} -> "
                         f"{ONNX_SCORES}, {ONNX_BOXES}")
    checked: dict[str, Any] = {"onnx_input": ONNX_INPUT, "onnx_outputs": outputs, "onnx_checked": True}
    if image is None:
        return checked
    with Image.open(image) as picture:
        pixels = np.asarray(picture.convert("RGB").resize(size), dtype=np.float32)
    batch = ((pixels - 127.0) / 128.0).transpose(2, 0, 1)[None]
    scores, boxes = session.run([ONNX_SCORES, ONNX_BOXES], {ONNX_INPUT: batch})
    return {**checked, "scores_shape": list(scores.shape), "boxes_shape": list(boxes.shape),
            "top_score": round(float(scores[0, :, 1:].max()), 6) if scores.shape[-1] > 1 else None,
            "checked_on": image.name}


# --- detectnet (host) --------------------------------------------------------------------------

def _detectnet_plan(ctx: Context) -> StagePlan:
    onnx, root = ctx.read(ONNX), ctx.read(prepare.ROOT)
    script = detectnet_script(f"../{onnx}", f"../{LABELS_FILE}", f"../{root}/JPEGImages/*.jpg")
    return StagePlan(outputs=(RUN_SCRIPT.promise(ctx),), run_inputs=(onnx,), params={"script": script},
                     clean=(DETECTNET,))


def _detectnet_run(ctx: Context, plan_: StagePlan, log: Callable[[str], None]) -> None:
    path = ctx.workspace.host(RUN_SCRIPT.promise(ctx))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan_.params["script"], encoding="utf-8")
    path.chmod(0o755)
    if shutil.which("detectnet") is None:
        log(f"detectnet (jetson-inference) is not installed here; on the Jetson: sh {path}")
        return
    done = subprocess.run(["sh", str(path)], capture_output=True, text=True)
    for line in (done.stdout + done.stderr).splitlines()[-20:]:
        log(line)
    if done.returncode != 0:
        raise ValueError(f"detectnet exited {done.returncode}")


def _detectnet_collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    ran = "detectnet (jetson-inference) is not installed here" not in log_text
    return Outcome(metrics={"ran": ran}, artifacts={"script": RUN_SCRIPT.promise(ctx)})


TRAIN_STAGE = Stage(name="train", plan=_train_plan, collect=_train_collect, before_run=_before_train,
                    description="train SSD-Mobilenet with train_ssd.py", reads=(prepare.ROOT,), produces=(MODEL,))
EVALUATE_STAGE = Stage(name="evaluate", plan=_evaluate_plan, collect=_evaluate_collect,
                       description="AP per class with eval_ssd.py", reads=(MODEL, prepare.ROOT))
EXPORT_STAGE = Stage(name="export", plan=_export_plan, collect=_export_collect,
                     description="ONNX with onnx_export.py, checked with onnxruntime", reads=(MODEL, prepare.ROOT),
                     produces=(ONNX,))
DETECTNET_STAGE = Stage(name="detectnet", plan=_detectnet_plan, collect=_detectnet_collect, run_on_host=_detectnet_run,
                        description="the detectnet command for the Jetson", reads=(ONNX, prepare.ROOT),
                        produces=(RUN_SCRIPT,))
STAGES = (prepare.STAGE, TRAIN_STAGE, EVALUATE_STAGE, EXPORT_STAGE, DETECTNET_STAGE)
