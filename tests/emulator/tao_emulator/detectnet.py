"""DetectNet_v2: train (auto-resume from .ckzip), evaluate, inference (inference spec),
calibration_tensorfile.  prune and export are shared with the other networks (det.py)."""

from __future__ import annotations

import glob
import os
import re

from . import catalog, common, data, metrics, modelio, spec, training
from .det import input_images, write_predictions
from .runtime import TaskFailed, say

CKZIP_RE = re.compile(r"model\.epoch-(\d+)\.ckzip$")


def _newest_ckzip(results: str):
    best = None
    for path in glob.glob(os.path.join(results, "model.epoch-*.ckzip")):
        m = CKZIP_RE.search(os.path.basename(path))
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), path)
    return best


def _required(value, flag: str):
    """DetectNet_v2's train and calibration_tensorfile leave -e/-r/-o optional to argparse; the
    task itself fails without them."""
    if not value:
        raise TaskFailed(f"TypeError: expected str, bytes or os.PathLike object, not NoneType ({flag})")
    return value


def train(ctx):
    a = ctx.args
    _required(a.results_dir, "-r/--results_dir")
    exp = common.load_experiment(ctx, _required(a.experiment_spec_file, "-e/--experiment_spec_file"),
                                 "detectnet_v2")
    results = a.results_dir
    common.open_status(ctx, results)
    ctx.status.write("STARTED", "Starting DetectNet_v2 training.")
    common.require_key_for(ctx, "training")
    arch, nlayers = common.arch_of("detectnet_v2", exp)
    classes = common.classes_of(exp)
    inp = common.input_of("detectnet_v2", exp)
    train_s, val_s = common.gather("detectnet_v2", exp)
    if not train_s:
        raise TaskFailed("ValueError: no training images found in dataset_config.data_sources")
    common.check_resolution(train_s + val_s, inp, "DetectNet_v2")
    mc, tc = exp.model_config, exp.training_config
    start, skill, pretrained, ratio = 1, 0.05, False, 1.0
    parent_fp = modelio.fingerprint("scratch", "detectnet_v2", arch, nlayers)
    if mc.pretrained_model_file:
        meta = modelio.load_model(mc.pretrained_model_file, ctx.key)
        if meta.get("kind") == "pruned" or meta.get("pruned_ratio", 1.0) < 1.0:
            if not mc.load_graph:
                raise TaskFailed("ValueError: Layer weight shape mismatch: the pretrained model is "
                                 "pruned; set model_config.load_graph: true to retrain it")
            common.check_compatible(meta, "detectnet_v2", arch, nlayers, classes,
                                    mc.pretrained_model_file)
            skill, pretrained, ratio = meta["skill"], meta.get("pretrained", False), meta["pruned_ratio"]
            parent_fp = meta["fingerprint"]
        else:
            if meta.get("kind") != "foreign" and meta.get("arch") not in (None, arch):
                raise TaskFailed("ValueError: Layer weight shape mismatch: the pretrained model is "
                                 f"a {meta.get('arch')} backbone, the spec asks for {arch}")
            if mc.load_graph and meta.get("kind") == "foreign":
                raise TaskFailed("ValueError: load_graph needs a model trained by DetectNet_v2")
            skill, pretrained = 0.2, True
            parent_fp = modelio.fingerprint("pretrained", meta.get("fingerprint"))
    newest = _newest_ckzip(results)
    if newest:
        state = modelio.load_ckzip(newest[1])
        if state.get("network") != "detectnet_v2" or state.get("classes") != classes:
            raise TaskFailed(f"ValueError: the checkpoint {newest[1]} does not match this spec")
        start = newest[0] + 1
        skill, pretrained, ratio = state["skill"], state["pretrained"], state["pruned_ratio"]
        parent_fp = state["fingerprint"]
        say(f"INFO:tensorflow:Restoring parameters from {newest[1]} (resuming at epoch {start})")
    interval = max(1, tc.checkpoint_interval)
    ev = exp.evaluation_config
    plan = training.Plan(
        net="detectnet_v2", title="DetectNet_v2", arch=arch, nlayers=nlayers, classes=classes,
        inp=inp, start_epoch=start, num_epochs=tc.num_epochs, skill=skill, pretrained=pretrained,
        pruned_ratio=ratio, qat=tc.enable_qat, parent_fp=parent_fp,
        spec_fp=common.file_fp(a.experiment_spec_file), n_train=len(train_s), val=val_s,
        batch=tc.batch_size_per_gpu, gpus=a.gpus,
        schedule=(tc.learning_rate.WhichOneof("learning_rate"),
                  getattr(tc.learning_rate, tc.learning_rate.WhichOneof("learning_rate"))),
        val_period=ev.validation_period_during_training,
        first_val_epoch=max(1, ev.first_validation_epoch),
        ckpt_interval=interval,
        checkpoint_path=lambda e: (os.path.join(results, f"model.epoch-{e}.ckzip")
                                   if e % interval == 0 else None),
        save_checkpoint=lambda p, m, e: modelio.save_ckzip(p, m),
        csv_path=None, style="detectnet", version=ctx.version,
    )
    final = training.run(plan, ctx.status)
    ext = catalog.checkpoint_ext(ctx.version)
    out = os.path.join(results, "weights", f"{a.model_name}.{ext}")
    common.makedirs(os.path.dirname(out))
    final = dict(final, kind="final")
    modelio.save_model(out, final, ctx.key)
    say(f"Saved the final model to {out}")
    ctx.status.write("SUCCESS", "Training finished successfully.")


def evaluate(ctx):
    a = ctx.args
    exp = common.load_experiment(ctx, a.experiment_spec, "detectnet_v2")
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", "Starting DetectNet_v2 evaluation.")
    if ctx.role == "tf" and getattr(a, "framework", "tlt") == "tensorrt" and ctx.major >= 5:
        raise TaskFailed("ValueError: -f tensorrt is not supported in this image")
    meta = common.load_eval_model(ctx, a.model_path)
    classes = common.classes_of(exp)
    if sorted(meta.get("classes", [])) != classes:
        raise TaskFailed("ValueError: the number of classes in the spec does not match the model")
    if getattr(a, "image_dir", None) and getattr(a, "label_dir", None):
        cmap = common.class_map(exp)
        samples = [{"image": s["image"], "objects": common._map_objects(s["objects"], cmap)}
                   for s in data.samples_from_label_dirs(a.image_dir, a.label_dir, None)]
    else:
        train_s, val_s = common.gather("detectnet_v2", exp)
        samples = train_s if getattr(a, "use_training_set", False) else val_s
    if not samples:
        raise TaskFailed("ValueError: no validation data (validation_fold or validation_data_source)")
    aps = metrics.class_aps(meta["skill"], meta["fingerprint"], classes, common.data_fp(samples))
    say(f"Validation cost: {metrics.validation_loss(meta['skill'], meta['fingerprint'], 0) / 100.0:.6f}")
    mean = common.detectnet_ap_table(aps)
    say("Median Inference Time: 0.005231")
    kpi = {f"AP_{c}": round(100 * v, 4) for c, v in aps.items()}
    kpi["mAP"] = mean
    if ctx.role == "deploy":
        common.write_results_json(a.results_dir, kpi)
    ctx.status.write("SUCCESS", "Evaluation finished successfully.", kpi=kpi)


def _inference_spec(ctx, path):
    try:
        return spec.load(ctx.version, "detectnet_v2_inference", path)
    except spec.SpecError as exc:
        raise TaskFailed(str(exc)) from None


def _model_of(ctx, ic):
    """The model: -m/--model_path when given, else the inference spec's tlt_config or
    tensorrt_config."""
    override = getattr(ctx.args, "model_path", None)
    if override:
        return common.load_eval_model(ctx, override)
    which = ic.WhichOneof("model_config_type")
    if which == "tlt_config":
        meta = modelio.load_model(ic.tlt_config.model, ctx.key)
        modelio.require_network(meta, "detectnet_v2", ic.tlt_config.model)
        return meta
    if which == "tensorrt_config":
        trt = ic.tensorrt_config
        if trt.trt_engine and os.path.isfile(trt.trt_engine):
            meta = modelio.load_engine(trt.trt_engine, ctx.trt_version)
        elif trt.etlt_model:
            _, meta = modelio.load_etlt(trt.etlt_model, ctx.key)
        else:
            raise TaskFailed("ValueError: tensorrt_config needs trt_engine or etlt_model")
        modelio.require_network(meta, "detectnet_v2", trt.trt_engine or trt.etlt_model)
        return meta
    raise TaskFailed("ValueError: inferencer_config needs tlt_config or tensorrt_config")


def inference(ctx):
    a = ctx.args
    if ctx.role == "deploy":
        return _deploy_inference(ctx)
    ispec = _inference_spec(ctx, a.experiment_spec)
    results = getattr(a, "results_dir", None)
    common.open_status(ctx, results)
    ctx.status.write("STARTED", "Starting DetectNet_v2 inference.")
    ic = ispec.inferencer_config
    meta = _model_of(ctx, ic)
    targets = list(ic.target_classes)
    if sorted(targets) != sorted(meta.get("classes", [])):
        raise TaskFailed(f"ValueError: inferencer_config.target_classes {targets} do not match the "
                         f"model classes {meta.get('classes')}")
    _, h, w = meta["input"]
    if (ic.image_width, ic.image_height) != (w, h):
        raise TaskFailed(f"ValueError: inferencer_config image size {ic.image_width}x"
                         f"{ic.image_height} does not match the model input {w}x{h}")
    bh = ispec.bbox_handler_config
    thresholds = {key: value.clustering_config.coverage_threshold
                  for key, value in bh.classwise_bbox_handler_config.items()}
    threshold = min(thresholds.values()) if thresholds else 0.005
    images = input_images(a.image_dir)
    out = results if results else a.out_image_path
    img_out = None if bh.disable_overlay else os.path.join(out, "images_annotated")
    lbl_out = os.path.join(out, "labels") if bh.kitti_dump else None
    common.makedirs(out)
    n = write_predictions(meta, images, threshold, img_out, lbl_out)
    say(f"Inference finished: {len(images)} images, {n} detections")
    ctx.status.write("SUCCESS", "Inference finished successfully.")


def _deploy_inference(ctx):
    """Deploy image: -m ENGINE; -e is the inference spec, or the training experiment spec."""
    a = ctx.args
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", "Starting DetectNet_v2 inference.")
    try:
        ispec = spec.load(ctx.version, "detectnet_v2_inference", a.experiment_spec)
        classes = list(ispec.inferencer_config.target_classes)
        thresholds = [value.clustering_config.coverage_threshold
                      for value in ispec.bbox_handler_config.classwise_bbox_handler_config.values()]
    except spec.SpecError as first:
        try:
            exp = spec.load(ctx.version, "detectnet_v2", a.experiment_spec)
            spec.check_detectnet_experiment(exp)
        except spec.SpecError:
            raise TaskFailed(str(first)) from None
        classes = common.classes_of(exp)
        thresholds = [value.clustering_config.coverage_threshold
                      for value in exp.postprocessing_config.target_class_config.values()]
    meta = common.load_eval_model(ctx, a.model_path)
    if sorted(classes) != sorted(meta.get("classes", [])):
        raise TaskFailed(f"ValueError: the spec classes {classes} do not match the engine classes "
                         f"{meta.get('classes')}")
    if not a.image_dir:
        raise TaskFailed("ValueError: DetectNet_v2 inference needs the images: pass -i/--image_dir")
    images = input_images(a.image_dir)
    threshold = min(thresholds) if thresholds else 0.005
    n = write_predictions(meta, images, threshold, os.path.join(a.results_dir, "images_annotated"),
                          os.path.join(a.results_dir, "labels"))
    say(f"Inference finished: {len(images)} images, {n} detections")
    ctx.status.write("SUCCESS", "Inference finished successfully.")


def calibration_tensorfile(ctx):
    a = ctx.args
    _required(a.output_path, "-o/--output_path")
    exp = common.load_experiment(ctx, _required(a.experiment_spec_file, "-e/--experiment_spec_file"),
                                 "detectnet_v2")
    train_s, val_s = common.gather("detectnet_v2", exp)
    samples = val_s if a.use_validation_set else train_s
    bs = exp.training_config.batch_size_per_gpu
    available = len(samples) // max(1, bs)
    batches = available if a.max_batches < 0 else min(a.max_batches, available)  # -1: all of them
    if batches < 1:
        raise TaskFailed(f"ValueError: not enough images for one batch of {bs}")
    parent = os.path.dirname(a.output_path)
    if parent:
        common.makedirs(parent)
    modelio.save_tensorfile(a.output_path, {"batches": batches, "batch_size": bs,
                                            "input": common.input_of("detectnet_v2", exp)})
    say(f"Wrote {batches} batches of {bs} images to the tensorfile {a.output_path}")
