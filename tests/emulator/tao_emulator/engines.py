"""Engine building: converter / tlt-converter (TF images) and gen_trt_engine (deploy images)."""

from __future__ import annotations

import os

from . import catalog, common, data, modelio
from .runtime import TaskFailed, say


def _parse_dims(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise TaskFailed(f"Invalid dimensions: {text}") from None


# What reduced precision costs the emulated model's accuracy (an engine's mAP against the model's).
PRECISION_LOSS = {"fp32": 0.0, "fp16": 0.002, "int8": 0.02}


def engine_meta(src: dict, ctx, precision: str, max_batch: int) -> dict:
    meta = dict(src)
    meta.update(kind="engine", precision=precision, trt_version=ctx.trt_version,
                skill=max(0.0, src.get("skill", 0.5) - PRECISION_LOSS.get(precision, 0.0)),
                max_batch_size=max_batch, built_by=f"{ctx.role}-{ctx.version}")
    return meta


def converter(ctx):
    a = ctx.args
    if not os.path.isfile(a.input_file):
        raise TaskFailed(f"[ERROR] Failed to open the model file {a.input_file}")
    input_node, meta = modelio.load_etlt(a.input_file, a.key)
    net = meta.get("network")
    info = catalog.NETS.get(net)
    if info is None:
        raise TaskFailed(f"[ERROR] {a.input_file} is not a TAO model")
    onnx_inside = input_node is None
    c, h, w = meta["input"]
    if onnx_inside and ctx.version in ("2.0", "3.21.11"):
        raise TaskFailed("[ERROR] UFFParser: the .etlt holds an ONNX model, which this "
                         "converter cannot parse; use the converter of the version that exported it")
    if not onnx_inside:
        if not a.input_dims:
            raise TaskFailed("[ERROR] Input dimensions (-d) are required for a UFF model")
        if not a.outputs:
            raise TaskFailed("[ERROR] Output node names (-o) are required for a UFF model")
    if a.input_dims:
        dims = _parse_dims(a.input_dims)
        if dims != [c, h, w]:
            raise TaskFailed(f"[ERROR] Input dimensions {a.input_dims} do not match the model "
                             f"input {c},{h},{w}")
    if a.outputs:
        given = [n.strip() for n in a.outputs.split(",") if n.strip()]
        expected = list(info["nodes"])
        if sorted(given) != sorted(expected):
            raise TaskFailed(f"[ERROR] UffParser: Output node(s) {given} not found in the graph; "
                             f"the {net} model outputs {','.join(expected)}")
    if onnx_inside:
        if not a.profiles:
            raise TaskFailed("[ERROR] Dynamic shape model: an optimization profile (-p "
                             "Input,1x3xHxW,NxCxHxW,MxCxHxW) is required")
        for prof in a.profiles:
            parts = prof.split(",")
            if len(parts) != 4:
                raise TaskFailed(f"[ERROR] Invalid optimization profile {prof!r}")
            if parts[0] != info["input"]:
                raise TaskFailed(f"[ERROR] Optimization profile for unknown input {parts[0]!r}; "
                                 f"the model input is {info['input']!r}")
            shapes = [_parse_dims(p) for p in parts[1:]]
            for shp in shapes:
                if len(shp) != 4 or shp[1:] != [c, h, w]:
                    raise TaskFailed(f"[ERROR] Profile shape {shp} does not match the model "
                                     f"input {c}x{h}x{w}")
            if not shapes[0][0] <= shapes[1][0] <= shapes[2][0]:
                raise TaskFailed("[ERROR] Profile batch sizes must satisfy min <= opt <= max")
    if a.data_type == "int8":
        if not a.cache_file:
            raise TaskFailed("[ERROR] INT8 needs a calibration cache (-c cal.bin)")
        modelio.load_cal_cache(a.cache_file)
    say(f"[INFO] Detected input dimensions from the model: (-1, {c}, {h}, {w})")
    say(f"[INFO] Model has {'dynamic' if onnx_inside else 'static'} shape, building a "
        f"{a.data_type} engine")
    max_batch = a.max_batch_size
    if onnx_inside:
        max_batch = max(_parse_dims(p.split(",")[3])[0] for p in a.profiles)
    try:
        modelio.save_engine(a.engine_file_path, engine_meta(meta, ctx, a.data_type, max_batch))
    except PermissionError:
        raise TaskFailed(f"[ERROR] Failed to write the engine {a.engine_file_path}: "
                         "Permission denied") from None
    say(f"[INFO] Engine saved to {a.engine_file_path}")


def _load_exported(ctx, path: str) -> dict:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        return modelio.load_onnx(path)
    if ext == ".etlt":
        return modelio.load_etlt(path, ctx.key)[1]
    raise TaskFailed(f"ValueError: gen_trt_engine takes an .onnx or .etlt model, got {path}")


def gen_trt_engine(ctx):
    """TAO Deploy builds an engine only with --engine_file or for INT8 (then into a temporary
    file); without either it checks the model and the spec and ends."""
    a, net = ctx.args, ctx.net
    common.load_experiment(ctx, a.experiment_spec)
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", "Starting TensorRT engine generation.")
    meta = _load_exported(ctx, a.model_path)
    modelio.require_network(meta, net, a.model_path)
    if a.engine_file is None and a.data_type != "int8":
        say("No --engine_file given: no TensorRT engine was built.")
        ctx.status.write("SUCCESS", "TensorRT engine generation finished successfully.")
        return
    if not a.min_batch_size <= a.opt_batch_size <= a.max_batch_size:
        raise TaskFailed("ValueError: need min_batch_size <= opt_batch_size <= max_batch_size")
    if a.data_type == "int8":
        cache = a.cal_cache_file or os.path.join(a.results_dir, "cal.bin")
        if a.cal_cache_file and os.path.isfile(a.cal_cache_file) and not a.cal_image_dir:
            modelio.load_cal_cache(a.cal_cache_file)
            say(f"Using calibration cache {a.cal_cache_file}")
        elif a.cal_image_dir:
            images = data.list_images(a.cal_image_dir)
            needed = a.batches * a.batch_size
            if len(images) < needed:
                raise TaskFailed(f"ValueError: Not enough images in {a.cal_image_dir}: "
                                 f"{len(images)} < batches * batch_size = {needed}")
            common.makedirs(os.path.dirname(cache) or ".")
            modelio.save_cal_cache(cache, {"network": net,
                                           "seed": int(meta["fingerprint"][:6], 16)})
            say(f"Calibration cache saved to {cache}")
        else:
            raise TaskFailed("ValueError: INT8 engine generation needs --cal_image_dir or an "
                             "existing --cal_cache_file")
    if a.engine_file is None:
        say("No --engine_file given: the INT8 engine was built into a temporary file.")
    else:
        parent = os.path.dirname(a.engine_file)
        if parent:
            common.makedirs(parent)
        modelio.save_engine(a.engine_file, engine_meta(meta, ctx, a.data_type, a.max_batch_size))
        say(f"TensorRT engine saved to {a.engine_file}")
    ctx.status.write("SUCCESS", "TensorRT engine generation finished successfully.")
