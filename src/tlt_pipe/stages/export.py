"""export: `<net> export` of the retrained model (.etlt up to TAO 4, .onnx on TAO 5) with the DeepStream config.

TAO refuses to overwrite an existing export, so the export directory is emptied first.
INT8 calibration happens here on TAO <= 3 (the cache then goes to the converter with -c).
"""

from __future__ import annotations

from tlt_pipe import parsers
from tlt_pipe.stages import Context, Outcome, Stage, StagePlan

DIR = "export"
CAL_CACHE = f"{DIR}/cal.bin"
CAL_DATA = f"{DIR}/cal.tensorfile"


def int8_in_export(ctx: Context) -> bool:
    return ctx.toolkit.calibrate_in_export and ctx.config.engine.data_type == "int8"


def calibration_images(ctx: Context) -> str:
    return ctx.container(f"{ctx.artifact('prepare', 'root', default='data/kitti')}/train/images")


def plan(ctx: Context) -> StagePlan:
    cfg = ctx.config.export
    model = ctx.artifact("retrain", "model")
    output = f"{DIR}/{ctx.network.checkpoint_prefix}.{ctx.toolkit.export_ext}"
    data_type = "int8" if int8_in_export(ctx) else cfg.data_type
    argv = [*ctx.command("export"), "-m", ctx.container(model), "-o", ctx.container(output), *ctx.key_args(),
            "-e", ctx.container("specs/retrain.txt"), "--data_type", data_type, "--batch_size", str(cfg.batch_size),
            "--gen_ds_config"]
    outputs = [output, f"{DIR}/labels.txt", f"{DIR}/nvinfer_config.txt"]
    if int8_in_export(ctx):
        argv += ["--cal_image_dir", calibration_images(ctx), "--cal_cache_file", ctx.container(CAL_CACHE),
                 "--cal_data_file", ctx.container(CAL_DATA), "--batches", "10"]
        outputs.append(CAL_CACHE)
    return StagePlan(image=ctx.image, argv=tuple(argv), run_inputs=(model, "specs/retrain.txt"),
                     outputs=tuple(outputs), clean=(DIR,), params={"output": output})


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    artifacts = {"model": plan_.params["output"], "labels": f"{DIR}/labels.txt",
                 "nvinfer_config": f"{DIR}/nvinfer_config.txt"}
    if int8_in_export(ctx):
        artifacts["cal_cache"] = CAL_CACHE
    return Outcome(metrics={"exported": parsers.parse_exported_path(log_text)}, artifacts=artifacts)


STAGE = Stage(name="export", needs=("retrain",), plan=plan, collect=collect, description="export for deployment")
