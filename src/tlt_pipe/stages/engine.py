"""engine: a TensorRT engine from the export, with tao-converter (TLT 2 .. TAO 4) or gen_trt_engine (TAO 5 deploy).

An engine is specific to the GPU and TensorRT version it is built on.
"""

from __future__ import annotations

from tlt_pipe.stages import Context, Outcome, Stage, StagePlan
from tlt_pipe.stages.export import calibration_images

DIR = "engine"


def _converter(ctx: Context, model: str, engine: str) -> tuple[str | None, list[str], tuple[str, ...]]:
    cfg, m = ctx.config.engine, ctx.config.model
    chw = f"{m.input_channels},{m.input_height},{m.input_width}"
    argv = [*ctx.command("converter"), *ctx.key_args(), "-d", chw, "-o", ctx.network.output_nodes,
            "-e", ctx.container(engine), "-m", str(cfg.max_batch_size), "-t", cfg.data_type, "-i", "nchw"]
    if ctx.toolkit.dynamic_etlt and ctx.network.name != "detectnet_v2":
        shape = f"{m.input_channels}x{m.input_height}x{m.input_width}"
        opt = cfg.opt_batch_size or cfg.max_batch_size
        argv += ["-p", f"{ctx.network.input_name},1x{shape},{opt}x{shape},{cfg.max_batch_size}x{shape}"]
    run_inputs: tuple[str, ...] = (model,)
    if cfg.data_type == "int8":
        cache = ctx.artifact("export", "cal_cache")
        argv += ["-c", ctx.container(cache), "-b", str(ctx.config.export.batch_size)]
        run_inputs += (cache,)
    if cfg.workspace_mb:
        argv += ["-w", str(cfg.workspace_mb * 1024 * 1024)]
    argv.append(ctx.container(model))
    return ctx.image, argv, run_inputs


def _gen_trt_engine(ctx: Context, model: str, engine: str) -> tuple[str | None, list[str], tuple[str, ...]]:
    cfg = ctx.config.engine
    argv = [*ctx.command("gen_trt_engine"), "-m", ctx.container(model), "-e", ctx.container("specs/retrain.txt"),
            "-r", ctx.container(DIR), *ctx.key_args(), "--engine_file", ctx.container(engine),
            "--data_type", cfg.data_type, "--max_batch_size", str(cfg.max_batch_size)]
    if cfg.opt_batch_size:
        argv += ["--opt_batch_size", str(cfg.opt_batch_size)]
    if cfg.workspace_mb:
        argv += ["--max_workspace_size", str(cfg.workspace_mb)]
    if cfg.data_type == "int8":
        argv += ["--cal_image_dir", calibration_images(ctx), "--cal_cache_file", ctx.container(f"{DIR}/cal.bin"),
                 "--batch_size", str(ctx.config.export.batch_size), "--batches", "10"]
    return ctx.deploy_image, argv, (model, "specs/retrain.txt")


def plan(ctx: Context) -> StagePlan:
    model = ctx.artifact("export", "model")
    engine = f"{DIR}/{ctx.network.checkpoint_prefix}.{ctx.config.engine.data_type}.engine"
    build = _gen_trt_engine if ctx.toolkit.engine_builder == "gen_trt_engine" else _converter
    image, argv, run_inputs = build(ctx, model, engine)
    return StagePlan(image=image, argv=tuple(argv), run_inputs=run_inputs, outputs=(engine,), clean=(DIR,),
                     params={"engine": engine})


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    engine = plan_.params["engine"]
    size = ctx.workspace.host(engine).stat().st_size
    return Outcome(metrics={"engine": engine, "engine_bytes": size}, artifacts={"engine": engine})


STAGE = Stage(name="engine", needs=("export",), plan=plan, collect=collect, description="build the TensorRT engine")
