"""deepstream: the DeepStream bundle of the run, after export and engine (deepstream.py renders it).

Writes deepstream/config_infer_primary.txt (gst-nvinfer), labels.txt and deepstream_app.txt on the host:
the exported model or the engine, each network's output layers and parser, the input size and precision,
and the deepstream: section's source, sink and tracker. The model key is never written here (`tltpipe
deepstream --with-key` writes a bundle that has it)."""

from __future__ import annotations

from collections.abc import Callable

from tlt_pipe.errors import ConfigError
from tlt_pipe.stages import Artifact, Context, Outcome, Stage, StagePlan, engine, export, prepare

DIR = "deepstream"
INFER = Artifact("deepstream", "infer_config")
APP = Artifact("deepstream", "app_config")


def _where(ctx: Context):
    from tlt_pipe import deepstream as ds

    cfg = ctx.config.deepstream
    try:
        return ds.parse_source(cfg.source), ds.parse_sink(cfg.sink)
    except ValueError as exc:
        raise ConfigError(f"deepstream: {exc}") from None


def plan(ctx: Context) -> StagePlan:
    from tlt_pipe import deepstream as ds

    _where(ctx)  # a bad source or sink is reported before anything runs
    model, built = ctx.read(export.MODEL), ctx.read(engine.ENGINE)
    labels = ctx.read(export.LABELS)
    cfg = ctx.config
    params = {**cfg.deepstream.model_dump(), "precision": cfg.engine.data_type, "threshold": cfg.inference.threshold,
              "input": [cfg.model.input_width, cfg.model.input_height]}
    return StagePlan(run_inputs=tuple(p for p in (model, built, labels) if p),
                     outputs=tuple(f"{DIR}/{name}" for name in (ds.INFER_CONFIG, ds.LABELS, ds.APP_CONFIG)),
                     clean=(DIR,), params=params)


def run_on_host(ctx: Context, plan_: StagePlan, log: Callable[[str], None]) -> None:
    from tlt_pipe import deepstream as ds

    cfg = ctx.config
    labels_file = ctx.read(export.LABELS)
    labels = ds.labels_of(ctx.network, ctx.workspace.host(labels_file) if labels_file else None,
                          ctx.read(prepare.CLASSES))
    calibration = (ds.calibration_of(ctx.workspace.run_dir, [ctx.read(export.CAL_CACHE_FILE), f"{engine.DIR}/cal.bin"])
                   if cfg.engine.data_type == "int8" else None)
    bundle = ds.bundle_for(cfg, model=ctx.read(export.MODEL), engine=ctx.read(engine.ENGINE), labels=labels,
                           calibration=calibration, parser_library=cfg.deepstream.parser_library)
    folder = ctx.workspace.host(DIR)
    ds.write_bundle(folder, bundle, *_where(ctx), tracker=cfg.deepstream.tracker)
    log(f"{ds.INFER_CONFIG}: {ctx.network.name}, {len(labels)} classes, {cfg.engine.data_type}, "
        f"{'the engine' if bundle.etlt else 'the ONNX model'} ({bundle.engine if bundle.etlt else bundle.model})")
    log(f"run it: cd {folder} && deepstream-app -c {ds.APP_CONFIG}"
        + ("  (an .etlt: DeepStream 6.x)" if bundle.etlt else ""))


def collect(ctx: Context, plan_: StagePlan, log_text: str) -> Outcome:
    from tlt_pipe import deepstream as ds

    prop = ds.read_key_file(ctx.workspace.host(f"{DIR}/{ds.INFER_CONFIG}").read_text(encoding="utf-8"))["property"]
    return Outcome(metrics={"network_mode": ctx.config.engine.data_type, "output_blobs": prop["output-blob-names"],
                            "classes": int(prop["num-detected-classes"])},
                   artifacts={"infer_config": f"{DIR}/{ds.INFER_CONFIG}", "app_config": f"{DIR}/{ds.APP_CONFIG}",
                              "labels": f"{DIR}/{ds.LABELS}"})


STAGE = Stage(name="deepstream", plan=plan, collect=collect, run_on_host=run_on_host,
              description="the DeepStream bundle: nvinfer and deepstream-app configs, labels",
              reads=(export.MODEL, export.LABELS, export.CAL_CACHE_FILE, engine.ENGINE, prepare.CLASSES),
              produces=(INFER, APP))
