"""Judging what tltpipe plans against NVIDIA's own definitions.

Specs: TAO 3.21.11, 3.22.05 and 4.0 against TAO 4.0's messages (nvidia-tao-tf1), 5.0 and 6.26.3 (whose
TF1 networks run in TAO 5.0.0's image) against TAO 5.x's (nvidia-tao-deploy 6.26.3), each parsed
strictly, and on those also through TAO Deploy's own load_proto.
argv: TF1 tasks through the emulator's parsers (section 7 of the TAO contract; tests/emulator proves
the match), TAO Deploy tasks through Deploy's own parsers. A flag must be one of the task's option
strings exactly (no abbreviation), required flags present, and each value must land in the
argument tltpipe means, with the right type and unit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
from pathlib import Path

from google.protobuf import text_format

from tlt_pipe.stages import engine, export, retrain, train
from tests.conformance.cases import KEY, Planned
from tests.reference import deploy_cli, protos

EMULATOR = Path(__file__).resolve().parents[1] / "emulator"
if str(EMULATOR) not in sys.path:
    sys.path.insert(0, str(EMULATOR))

from tao_emulator import main as emulator_main  # noqa: E402
from tao_emulator import parsers as emulator_parsers  # noqa: E402

# Toolkit -> the version of NVIDIA's messages it is judged by (TLT 2.0: see test_tlt2_evidence.py).
REFERENCE = {"3.21.11": "4.0", "3.22.05": "4.0", "4.0": "4.0", "5.0": "5.0", "6.26.3": "5.0"}
DEPLOY_LOADER = ("ssd", "dssd", "retinanet", "yolo_v3", "yolo_v4", "yolo_v4_tiny", "detectnet_v2")


def spec_kind(network: str, path: str) -> str:
    if "tfrecords" in path:
        return "dataset_convert"
    if path in ("specs/inference.txt", "specs/inference_engine.txt"):
        return "detectnet_v2_inference"
    return network


def spec_problems(toolkit: str, network: str, path: str, text: str) -> list[str]:
    """Why the real messages of the toolkit's version refuse this spec (empty when they accept it)."""
    version = REFERENCE[toolkit]
    kind = spec_kind(network, path)
    try:
        text_format.Parse(text, protos.message_class(version, kind)())
    except text_format.ParseError as exc:
        return [f"{path}: TAO {version} {protos.ROOTS[kind][1]}: {exc}"]
    if version == "5.0" and kind in DEPLOY_LOADER:
        classes = {"Experiment": protos.message_class(version, network),
                   "Inference": protos.message_class(version, "detectnet_v2_inference")}
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            try:
                deploy_cli.spec_loader(network, classes)(handle.name)
            except Exception as exc:  # noqa: BLE001 - whatever the real loader raises is the finding
                return [f"{path}: TAO Deploy load_proto: {type(exc).__name__}: {exc}"]
    return []


# --- argv ----------------------------------------------------------------------------------------

def _parse(parser: argparse.ArgumentParser, args: list[str]) -> tuple[argparse.Namespace | None, str]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(args), ""
    except SystemExit:
        return None, err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "rejected"
    except argparse.ArgumentError as exc:
        return None, str(exc)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}  # noqa: SLF001


def resolve(planned: Planned) -> tuple[str, str | None, str, list[str], argparse.ArgumentParser]:
    """(role, network, task, flags, parser) for a planned argv."""
    ctx, argv = planned.ctx, list(planned.plan.argv)
    deploy = planned.plan.image == ctx.deploy_image and ctx.deploy_image != ctx.image
    if deploy:
        network, task = argv[0], argv[1]
        return "deploy", network, task, argv[2:], deploy_cli.parser(network, task)
    version = ctx.toolkit.tf1_release or ctx.toolkit.version  # the TF1 image the task runs in
    with contextlib.redirect_stderr(io.StringIO()):
        network, task, rest, prog = emulator_main.resolve(argv[0], argv[1:], version, "tf")
    return "tf", network, task, rest, emulator_parsers.build(prog, network, task, version, "tf")


def _expected(planned: Planned, task: str, role: str) -> dict:
    """What each argument must hold, from the meaning of the stage (not from the argv tltpipe wrote)."""
    ctx, stage, cfg = planned.ctx, planned.stage, planned.ctx.config
    c = ctx.container
    keyed = {"key": KEY} if ctx.key and role == "tf" or task == "gen_trt_engine" and ctx.toolkit.key_required else {}
    if task == "dataset_convert":
        suffix = "_val" if stage == "tfrecords_val" else ""
        return {"dataset_export_spec": c(f"specs/tfrecords{suffix}.txt")}
    if task == "kmeans":
        m = cfg.model
        return {"size_x": m.input_width, "size_y": m.input_height}
    if task == "train":
        spec = planned.plan.argv[list(planned.plan.argv).index("-e") + 1]
        assert spec.startswith(c(f"specs/{stage}")), spec
        return {"experiment_spec_file": spec, "results_dir": c(stage), **keyed}
    if task == "evaluate" and stage == "evaluate_engine":
        out = {"experiment_spec": c("specs/retrain.txt"), "model_path": c(ctx.read(engine.ENGINE)), **keyed}
        if role == "deploy":
            out.update(image_dir=c("data/kitti/val/images"), label_dir=c("data/kitti/val/labels"))
        elif ctx.network.name == "detectnet_v2":
            out["framework"] = "tensorrt"
        if role == "deploy" or ctx.toolkit.results_flag:
            out["results_dir"] = c(stage)
        return out
    if task == "evaluate":
        trained = "train" if stage == "evaluate" else "retrain"
        model = c(ctx.read(train.MODEL if trained == "train" else retrain.MODEL))
        out = {"experiment_spec": c(f"specs/{trained}.txt"), "model_path": model, **keyed}
        if role == "deploy" or ctx.toolkit.results_flag:
            out["results_dir"] = c(stage)
        return out
    if task == "prune":
        out = {"model": c(ctx.read(train.MODEL)), "pruning_threshold": cfg.prune.threshold,
               "equalization_criterion": cfg.prune.equalization, **keyed}
        if ctx.network.prune_reads_spec:
            out["experiment_spec_path"] = c("specs/train.txt")
        return out
    if task == "export":
        out = {"model": c(ctx.read(retrain.MODEL)), "gen_ds_config": ctx.toolkit.export_ds_config, **keyed}
        if ctx.network.tlt2_export_spec or not ctx.toolkit.legacy_commands:
            out["experiment_spec"] = c("specs/retrain.txt")
        return out
    if task == "calibration_tensorfile":
        return {"experiment_spec_file": c("specs/retrain.txt")}
    if task == "gen_trt_engine":
        e = cfg.engine
        out = {"model_path": c(ctx.read(export.MODEL)), "experiment_spec": c("specs/retrain.txt"),
               "results_dir": c("engine"), "data_type": e.data_type, "max_batch_size": e.max_batch_size}
        if e.workspace_mb:
            out["max_workspace_size"] = math.ceil(e.workspace_mb / 1024)  # GB
        return out
    if task == "converter":
        e, m = cfg.engine, cfg.model
        out = {"input_file": c(ctx.read(export.MODEL)), "key": KEY, "data_type": e.data_type,
               "input_dims": f"{m.input_channels},{m.input_height},{m.input_width}",
               "outputs": ctx.network.output_nodes, "max_batch_size": e.max_batch_size}
        if e.workspace_mb:
            out["max_workspace_size"] = e.workspace_mb * 1024 * 1024  # bytes
        return out
    if task == "inference":
        on_engine = stage == "inference_engine"
        out = {"image_dir": c("data/kitti/val/images"), **keyed}
        if ctx.network.name != "detectnet_v2" or role == "deploy":
            out["model_path"] = c(ctx.read(engine.ENGINE if on_engine else retrain.MODEL))
        if ctx.toolkit.results_flag or role == "deploy":
            out["results_dir"] = c("infer_engine" if on_engine else "infer")
        return out
    raise AssertionError(f"no expectation for task {task}")


def argv_problems(planned: Planned) -> list[str]:
    """Why the real parser of the task refuses the planned argv, or reads it otherwise than meant."""
    try:
        role, network, task, flags, parser = resolve(planned)
    except SystemExit:
        return [f"{planned.stage}: {planned.plan.argv[0]} is not a command of this image"]
    where = f"{planned.stage} ({role} {network or ''} {task})"
    known = _options(parser)
    problems = [f"{where}: {token} is not one of its flags (an abbreviation at best)"
                for token in flags if token.startswith("-") and not _is_number(token) and token not in known]
    namespace, error = _parse(parser, flags)
    if namespace is None:
        return problems + [f"{where}: {error}"]
    for dest, value in _expected(planned, task, role).items():
        got = getattr(namespace, dest, "<missing>")
        if isinstance(value, float):
            ok = isinstance(got, float) and math.isclose(got, value)
        else:
            ok = got == value
        if not ok:
            problems.append(f"{where}: {dest} is {got!r}, tltpipe means {value!r}")
    return problems


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
