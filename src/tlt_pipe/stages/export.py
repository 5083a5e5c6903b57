"""export: `<net> export` of the retrained model (.etlt up to TAO 4, .onnx on TAO 5), with the DeepStream
config from TAO 3 on (TLT 2.0 had no --gen_ds_config).

TAO refuses to overwrite an existing export, so the export directory is emptied first.
INT8 calibration happens here on TAO <= 3 (the cache then goes to the converter with -c):
from the training images, or for DetectNet_v2 from the calibration tensorfile.
"""

from __future__ import annotations

from tlt_pipe import parsers
from tlt_pipe.stages import Context, Outcome, Stage, StagePlan
from tlt_pipe.stages.calibration import applies, calibration

DIR = "export"
CAL_CACHE = f"{DIR}/cal.bin"
CAL_DATA = f"{DIR}/cal.tensorfile"


def int8_in_export(ctx: Context) -> bool:
    return ctx.toolkit.calibrate_in_export and ctx.config.engine.data_type == "int8"


def calibration_images(ctx: Context) -> str:
    return ctx.container(calibration(ctx).image_dir)


def promises(ctx: Context) -> dict[str, str]:
    """The exported model, its DeepStream files (TAO 3 on) and the INT8 cache when export calibrates."""
    out = {"model": f"{DIR}/{ctx.network.checkpoint_prefix}.{ctx.toolkit.export_ext}"}
    if ctx.toolkit.export_ds_config:
        out.update(labels=f"{DIR}/labels.txt", nvinfer_config=f"{DIR}/nvinfer_config.txt")
    if int8_in_export(ctx):
        out["cal_cache"] = CAL_CACHE
    return out


def plan(ctx: Context) -> StagePlan:
    cfg = ctx.config.export
    model = ctx.artifact("retrain", "model")
    output = promises(ctx)["model"]
    int8 = int8_in_export(ctx)
    cal = calibration(ctx)
    reads_spec = ctx.network.tlt2_export_spec or not ctx.toolkit.legacy_commands
    argv = [*ctx.command("export"), "-m", ctx.container(model), "-o", ctx.container(output), *ctx.key_args()]
    argv += ["-e", ctx.container("specs/retrain.txt")] if reads_spec else []
    argv += ["--data_type", "int8" if int8 else cfg.data_type,
             "--batch_size", str(cal.batch_size if int8 else cfg.batch_size)]
    outputs = [output]
    if ctx.toolkit.export_ds_config:
        argv.append("--gen_ds_config")
        outputs += [f"{DIR}/labels.txt", f"{DIR}/nvinfer_config.txt"]
    run_inputs: list[str] = [model, "specs/retrain.txt"]
    if int8:
        if applies(ctx.network, ctx.toolkit, ctx.config):  # DetectNet_v2: batches from its tensorfile
            tensorfile = ctx.artifact("calibration_tensorfile", "tensorfile")
            argv += ["--cal_data_file", ctx.container(tensorfile)]
            run_inputs.append(tensorfile)
        else:
            argv += ["--cal_image_dir", ctx.container(cal.image_dir), "--cal_data_file", ctx.container(CAL_DATA)]
            run_inputs.append(cal.image_dir)
        argv += ["--cal_cache_file", ctx.container(CAL_CACHE), "--batches", str(cal.batches)]
        outputs.append(CAL_CACHE)
    return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=tuple(run_inputs),
                     outputs=tuple(outputs), clean=(DIR,), params={"output": output})


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    artifacts = promises(ctx)
    metrics = {"exported": parsers.parse_exported_path(log_text)}
    if int8_in_export(ctx):
        cal = calibration(ctx)
        metrics.update(calibration_images=cal.images, calibration_batches=cal.batches,
                       calibration_batch_size=cal.batch_size)
    return Outcome(metrics=metrics, artifacts=artifacts)


STAGE = Stage(name="export", needs=("retrain",), plan=plan, collect=collect, description="export for deployment",
              promises=promises)
