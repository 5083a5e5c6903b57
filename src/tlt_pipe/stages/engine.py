"""engine: a TensorRT engine from the export, with tao-converter (TLT 2 .. TAO 4) or gen_trt_engine (TAO 4/5 deploy).

INT8 on TAO 4 is calibrated by gen_trt_engine in the deploy image (export no longer calibrates
there), so a TAO 4 INT8 engine is built there too. An engine is specific to the GPU and
TensorRT version it is built on.
"""

from __future__ import annotations

import math

from tlt_pipe import provenance
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, calibration, export, retrain

DIR = "engine"

ENGINE = Artifact("engine", "engine",
                  promise=lambda ctx: f"{DIR}/{ctx.network.checkpoint_prefix}.{ctx.config.engine.data_type}.engine")
PROVENANCE = Artifact("engine", "provenance", in_metrics=True)  # GPU, TensorRT, precision, batch sizes, builder


def _converter(ctx: Context, model: str, engine: str) -> tuple[str | None, list[str], tuple[str, ...]]:
    cfg, m = ctx.config.engine, ctx.config.model
    chw = f"{m.input_channels},{m.input_height},{m.input_width}"
    argv = [*ctx.command("converter"), *ctx.key_args(), "-d", chw, "-o", ctx.network.output_nodes,
            "-e", ctx.container(engine), "-m", str(cfg.max_batch_size), "-t", cfg.data_type, "-i", "nchw"]
    if ctx.toolkit.dynamic_etlt and ctx.network.dynamic_shape:
        shape = f"{m.input_channels}x{m.input_height}x{m.input_width}"
        opt = cfg.opt_batch_size or cfg.max_batch_size
        argv += ["-p", f"{ctx.network.input_name},1x{shape},{opt}x{shape},{cfg.max_batch_size}x{shape}"]
    run_inputs: tuple[str, ...] = (model,)
    if cfg.data_type == "int8":
        cache = ctx.read(export.CAL_CACHE_FILE)
        argv += ["-c", ctx.container(cache), "-b", str(calibration.calibration(ctx).batch_size)]
        run_inputs += (cache,)
    if cfg.workspace_mb:  # the converter counts bytes
        argv += ["-w", str(cfg.workspace_mb * 1024 * 1024)]
    argv.append(ctx.container(model))
    return ctx.image, argv, run_inputs


def _gen_trt_engine(ctx: Context, model: str, engine: str) -> tuple[str | None, list[str], tuple[str, ...]]:
    cfg = ctx.config.engine
    spec = ctx.read(retrain.SPEC)
    argv = [*ctx.command("gen_trt_engine"), "-m", ctx.container(model), "-e", ctx.container(spec),
            "-r", ctx.container(DIR), *ctx.key_args(), "--engine_file", ctx.container(engine),
            "--data_type", cfg.data_type, "--max_batch_size", str(cfg.max_batch_size)]
    if cfg.opt_batch_size:
        argv += ["--opt_batch_size", str(cfg.opt_batch_size)]
    if cfg.workspace_mb:  # gen_trt_engine counts whole GB
        argv += ["--max_workspace_size", str(math.ceil(cfg.workspace_mb / 1024))]
    run_inputs: tuple[str, ...] = (model, spec)
    if cfg.data_type == "int8":
        cal = calibration.calibration(ctx)
        argv += ["--cal_image_dir", ctx.container(cal.image_dir), "--cal_cache_file", ctx.container(f"{DIR}/cal.bin"),
                 "--batch_size", str(cal.batch_size), "--batches", str(cal.batches)]
        run_inputs += (cal.image_dir,)
    return ctx.deploy_image, argv, run_inputs


def builder(ctx: Context) -> str:
    """gen_trt_engine (deploy image) or converter."""
    if ctx.toolkit.engine_builder == "gen_trt_engine":
        return "gen_trt_engine"
    if ctx.config.engine.data_type == "int8" and not ctx.toolkit.calibrate_in_export and ctx.deploy_image:
        return "gen_trt_engine"
    return "converter"


def plan(ctx: Context) -> StagePlan:
    model = ctx.read(export.MODEL)
    engine = ENGINE.promise(ctx)
    build = _gen_trt_engine if builder(ctx) == "gen_trt_engine" else _converter
    image, argv, run_inputs = build(ctx, model, engine)
    return StagePlan(image=image, argv=tuple(argv), run_inputs=run_inputs, outputs=(engine,), clean=(DIR,),
                     params={"engine": engine}, probe=True)


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    engine = plan_.params["engine"]
    size = ctx.workspace.host(engine).stat().st_size
    cfg = ctx.config.engine
    built = {**provenance.parse(log_text), "precision": cfg.data_type, "max_batch_size": cfg.max_batch_size,
             "opt_batch_size": cfg.opt_batch_size or cfg.max_batch_size, "builder": builder(ctx),
             "image": plan_.image}
    metrics = {"engine": engine, "engine_bytes": size, "precision": cfg.data_type, "provenance": built}
    if cfg.data_type == "int8" and builder(ctx) == "gen_trt_engine":
        metrics["calibration_images"] = calibration.calibration(ctx).images
    return Outcome(metrics=metrics, artifacts={"engine": engine})


STAGE = Stage(name="engine", plan=plan, collect=collect, description="build the TensorRT engine",
              reads=(export.MODEL, export.CAL_CACHE_FILE, retrain.SPEC, *calibration.READS), produces=(ENGINE,))
