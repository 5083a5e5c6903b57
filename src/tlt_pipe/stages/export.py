"""export: `<net> export` of the retrained model (.etlt up to TAO 4, .onnx on TAO 5), with the DeepStream
config from TAO 3 on (TLT 2.0 had no --gen_ds_config).

TAO refuses to overwrite an existing export, so the export directory is emptied first.
INT8 calibration happens here on TAO <= 3 (the cache then goes to the converter with -c):
from the training images, or for DetectNet_v2 from the calibration tensorfile.
"""

from __future__ import annotations

from collections.abc import Callable

from tlt_pipe import parsers
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, calibration, retrain
from tlt_pipe.stages.calibration import applies

DIR = "export"
CAL_CACHE = f"{DIR}/cal.bin"
CAL_DATA = f"{DIR}/cal.tensorfile"


def int8_in_export(ctx: Context) -> bool:
    return ctx.toolkit.calibrate_in_export and ctx.config.engine.data_type == "int8"


def _ds_file(name: str) -> Callable[[Context], str | None]:
    return lambda ctx: f"{DIR}/{name}" if ctx.toolkit.export_ds_config else None


MODEL = Artifact("export", "model", promise=lambda ctx: f"{DIR}/{ctx.network.checkpoint_prefix}.{ctx.toolkit.export_ext}")
LABELS = Artifact("export", "labels", promise=_ds_file("labels.txt"))  # DeepStream's files: TAO 3 on
NVINFER_CONFIG = Artifact("export", "nvinfer_config", promise=_ds_file("nvinfer_config.txt"))
CAL_CACHE_FILE = Artifact("export", "cal_cache", promise=lambda ctx: CAL_CACHE if int8_in_export(ctx) else None)
PRODUCES = (MODEL, LABELS, NVINFER_CONFIG, CAL_CACHE_FILE)


def plan(ctx: Context) -> StagePlan:
    cfg = ctx.config.export
    model, spec = ctx.read(retrain.MODEL), ctx.read(retrain.SPEC)
    output = MODEL.promise(ctx)
    int8 = int8_in_export(ctx)
    cal = calibration.calibration(ctx)
    reads_spec = ctx.network.tlt2_export_spec or not ctx.toolkit.legacy_commands
    argv = [*ctx.command("export"), "-m", ctx.container(model), "-o", ctx.container(output), *ctx.key_args()]
    argv += ["-e", ctx.container(spec)] if reads_spec else []
    argv += ["--data_type", "int8" if int8 else cfg.data_type,
             "--batch_size", str(cal.batch_size if int8 else cfg.batch_size)]
    outputs = [output]
    if ctx.toolkit.export_ds_config:
        argv.append("--gen_ds_config")
        outputs += [f"{DIR}/labels.txt", f"{DIR}/nvinfer_config.txt"]
    run_inputs: list[str] = [model, spec]
    if int8:
        if applies(ctx.network, ctx.toolkit, ctx.config):  # DetectNet_v2: batches from its tensorfile
            tensorfile = ctx.read(calibration.TENSORFILE)
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
    artifacts = {h.name: path for h in PRODUCES if (path := h.promise(ctx)) is not None}
    metrics = {"exported": parsers.parse_exported_path(log_text)}
    if int8_in_export(ctx):
        cal = calibration.calibration(ctx)
        metrics.update(calibration_images=cal.images, calibration_batches=cal.batches,
                       calibration_batch_size=cal.batch_size)
    return Outcome(metrics=metrics, artifacts=artifacts)


STAGE = Stage(name="export", plan=plan, collect=collect, description="export for deployment",
              reads=(retrain.MODEL, retrain.SPEC, calibration.TENSORFILE, *calibration.READS), produces=PRODUCES)
