"""SSD, DSSD, RetinaNet, YOLOv3, YOLOv4, YOLOv4-tiny: train, evaluate, inference, prune, export."""

from __future__ import annotations

import os
import shutil

from . import catalog, common, data, metrics, modelio, spec, training
from .runtime import TaskFailed, say, warn


def _resume_epoch(path: str) -> int:
    """The epoch a checkpoint was saved at, read from its name (`..._epoch_010.hdf5` -> 10)."""
    stem = path.split(".")[-2].split("_")[-1] if "." in path else path
    try:
        return int(stem)
    except ValueError:
        raise TaskFailed(f"ValueError: invalid literal for int() with base 10: '{stem}'\n"
                         "The above exception was the direct cause of the following exception:\n"
                         "ValueError: Cannot parse the checkpoint path. Did you rename it?") from None


def _start_state(ctx, net, exp, arch, nlayers, classes):
    """-> (start_epoch, skill, pretrained, pruned_ratio, parent_fp)."""
    a = ctx.args
    tc = exp.training_config
    scratch = (1, 0.05, False, 1.0, modelio.fingerprint("scratch", net, arch, nlayers))

    def pretrained_from(path, start=1):
        meta = modelio.load_model(path, ctx.key)
        if meta.get("kind") != "foreign" and meta.get("arch") not in (None, arch):
            raise TaskFailed(f"ValueError: Layer weight shape mismatch: the pretrained model {path} "
                             f"is a {meta.get('arch')} backbone, the spec asks for {arch}")
        if meta.get("network") == net and meta.get("classes") == classes:
            return (start, meta["skill"] * 0.95, meta.get("pretrained", False),
                    meta.get("pruned_ratio", 1.0), meta["fingerprint"])
        return (start, 0.2, True, meta.get("pruned_ratio", 1.0) if meta.get("network") == net else 1.0,
                modelio.fingerprint("pretrained", meta.get("fingerprint")))

    def continue_from(path, start):
        meta = modelio.load_model(path, ctx.key)
        common.check_compatible(meta, net, arch, nlayers, classes, path)
        return (start, meta["skill"], meta.get("pretrained", False), meta.get("pruned_ratio", 1.0),
                meta["fingerprint"])

    which = tc.WhichOneof("load_model")
    if catalog.family(net) == "ssd":  # SSD/DSSD: the model comes with -m, the epoch with --initial_epoch
        if which:
            warn(f"training_config.{which} is not used by {net}; pass the model with -m")
        if a.initial_epoch < 1:
            raise TaskFailed("ValueError: --initial_epoch must be >= 1")
        if a.initial_epoch > 1:  # without -m: a fresh model that starts counting there
            if not a.resume_model_weights:
                return (a.initial_epoch,) + scratch[1:]
            return continue_from(a.resume_model_weights, a.initial_epoch)
        if a.resume_model_weights:
            meta = modelio.load_model(a.resume_model_weights, ctx.key)
            if meta.get("network") == net and meta.get("kind") == "pruned":
                return continue_from(a.resume_model_weights, 1)
            return pretrained_from(a.resume_model_weights)
        return scratch
    # RetinaNet and YOLO: the model is a spec field (a oneof); a resume continues after the epoch
    # in the checkpoint's name. RetinaNet's hidden --initial_epoch (epochs done) overrides it.
    done = getattr(a, "initial_epoch", 0) or 0
    if which is None:
        return (done + 1,) + scratch[1:]
    path = getattr(tc, which)
    if which == "pretrain_model_path":
        return pretrained_from(path, done + 1)
    if which == "resume_model_path":
        return continue_from(path, (done or _resume_epoch(path)) + 1)
    return continue_from(path, done + 1)  # pruned_model_path


def _check_arch_flag(ctx, net: str) -> None:
    """SSD's train --arch ssd|dssd must agree with the spec's network block."""
    wanted = getattr(ctx.args, "arch", None)
    if wanted and wanted != net:
        raise TaskFailed(f"AssertionError: The spec file specifies {net} but you typed {wanted} "
                         "in command line.")


def train(ctx):
    a = ctx.args
    exp = common.load_experiment(ctx, a.experiment_spec_file)
    net = spec.spec_network(exp, ctx.net)
    title = catalog.NETS[net]["title"]
    results = a.results_dir
    common.open_status(ctx, results)
    ctx.status.write("STARTED", f"Starting {title} training.")
    _check_arch_flag(ctx, net)
    common.require_key_for(ctx, "training")
    arch, nlayers = common.arch_of(net, exp)
    classes = common.classes_of(exp)
    inp = common.input_of(net, exp)
    train_s, val_s = common.gather(net, exp)
    if not train_s:
        raise TaskFailed("ValueError: no training images found in dataset_config.data_sources")
    if spec.tlt2_layout(exp):
        common.check_resolution(train_s + val_s, inp, title)
    start, skill, pretrained, pruned_ratio, parent_fp = _start_state(ctx, net, exp, arch, nlayers,
                                                                     classes)
    tc = exp.training_config
    stem = catalog.model_stem(net, arch, nlayers)
    ext = catalog.checkpoint_ext(ctx.version)
    wdir = os.path.join(results, "weights")
    common.makedirs(wdir)
    prefix = catalog.NETS[net]["prefix"]
    csv_path = os.path.join(results, f"{prefix}_training_log_{catalog.arch_tag(arch, nlayers)}.csv")
    if net.startswith("yolo"):
        with open(os.path.join(results, "model_output_labels.txt"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(classes) + "\n")
    interval = max(1, tc.checkpoint_interval)
    # YOLO and RetinaNet (TAO 3-5) also save and validate at the last epoch; RetinaNet appends to
    # its CSV and reads a validation period of 0 as 10; YOLO's eval_config has no validation period:
    # it validates at every checkpoint.
    tao_retinanet = net == "retinanet" and not spec.tlt2_layout(exp)
    last_too = net.startswith("yolo") or tao_retinanet
    if "validation_period_during_training" not in exp.eval_config.DESCRIPTOR.fields_by_name:
        val_period = interval
    else:
        val_period = exp.eval_config.validation_period_during_training or (10 if tao_retinanet else 0)

    def ckpt_path(epoch):
        if epoch % interval == 0 or (last_too and epoch == tc.num_epochs):
            return os.path.join(wdir, f"{stem}_epoch_{epoch:03d}.{ext}")
        return None

    say(f"Number of images in the training dataset:\t {len(train_s):>5}")
    say(f"Number of images in the validation dataset:\t {len(val_s):>5}")
    plan = training.Plan(
        net=net, title=title, arch=arch, nlayers=nlayers, classes=classes, inp=inp,
        start_epoch=start, num_epochs=tc.num_epochs, skill=skill, pretrained=pretrained,
        pruned_ratio=pruned_ratio, qat=tc.enable_qat, parent_fp=parent_fp,
        spec_fp=common.file_fp(a.experiment_spec_file), n_train=len(train_s), val=val_s,
        batch=tc.batch_size_per_gpu, gpus=a.gpus,
        schedule=(tc.learning_rate.WhichOneof("learning_rate"),
                  getattr(tc.learning_rate, tc.learning_rate.WhichOneof("learning_rate"))),
        val_period=val_period, validate_last=last_too,
        ckpt_interval=interval, checkpoint_path=ckpt_path,
        save_checkpoint=lambda p, m, e: modelio.save_model(p, m, ctx.key),
        csv_path=csv_path, csv_append=tao_retinanet,
        version=ctx.version,
    )
    training.run(plan, ctx.status)
    ctx.status.write("SUCCESS", "Training finished successfully.")


def _deploy_samples(ctx, exp, with_labels: bool) -> list[dict]:
    """TAO Deploy reads images (and KITTI labels) from -i/-l or validation_data_sources."""
    cmap = common.class_map(exp)
    samples = []
    for image_dir, label_dir in common.deploy_directories(exp, ctx.args.image_dir,
                                                          getattr(ctx.args, "label_dir", None)):
        if not with_labels:
            samples.extend({"image": p, "objects": []} for p in input_images(image_dir))
            continue
        if not image_dir or not label_dir:
            raise TaskFailed("ValueError: evaluation needs -i and -l, or image_directory_path and "
                             "label_directory_path in dataset_config.validation_data_sources")
        samples.extend({"image": s["image"], "objects": common._map_objects(s["objects"], cmap)}
                       for s in data.samples_from_label_dirs(image_dir, label_dir, None))
    return samples


def evaluate(ctx):
    a = ctx.args
    exp = common.load_experiment(ctx, a.experiment_spec)
    net = spec.spec_network(exp, ctx.net)
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", f"Starting {catalog.NETS[net]['title']} evaluation.")
    meta = common.load_eval_model(ctx, a.model_path)
    classes = common.classes_of(exp)
    if sorted(meta.get("classes", [])) != classes:
        raise TaskFailed(f"ValueError: the model has classes {meta.get('classes')} but the spec "
                         f"maps to {classes} (number of classes does not match)")
    if ctx.role == "deploy":
        val = _deploy_samples(ctx, exp, with_labels=True)
    else:
        _, val = common.gather(net, exp)
    if not val:
        which = "validation_data_source" if spec.tlt2_layout(exp) else "validation_data_sources"
        raise TaskFailed("ValueError: evaluation needs validation data: set "
                         f"dataset_config.{which} or validation_fold")
    say(f"Number of images in the evaluation dataset: {len(val)}")
    aps = metrics.class_aps(meta["skill"], meta["fingerprint"], classes, common.data_fp(val))
    say("Start to calculate AP for each class")
    mean = common.ap_block(aps)
    kpi = {f"AP_{c}": v for c, v in aps.items()}
    kpi["mAP"] = mean
    if ctx.role == "deploy":
        common.write_results_json(a.results_dir, kpi)
    ctx.status.write("SUCCESS", "Evaluation finished successfully.", kpi=kpi)


# ---------------------------------------------------------------------------------------------
# inference


def detections(meta: dict, image_path: str, threshold: float) -> list[tuple]:
    """Deterministic fake detections: (class, x1, y1, x2, y2, confidence)."""
    size = data.image_size(image_path)
    if size is None:
        _, h, w = meta.get("input", [3, 300, 300])
        size = (w, h)
    w, h = size
    name = os.path.basename(image_path)
    fp = meta["fingerprint"]
    classes = meta.get("classes") or ["object"]
    skill = meta.get("skill", 0.5)
    out = []
    for i in range(1 + int(4 * metrics.unit("n", fp, name))):
        cls = classes[int(len(classes) * metrics.unit("c", fp, name, i))]
        bw = max(2.0, w * (0.05 + 0.4 * metrics.unit("w", fp, name, i)))
        bh = max(2.0, h * (0.05 + 0.4 * metrics.unit("h", fp, name, i)))
        x1 = (w - bw) * metrics.unit("x", fp, name, i)
        y1 = (h - bh) * metrics.unit("y", fp, name, i)
        conf = round(min(0.9999, metrics.unit("s", fp, name, i) ** (1.0 - 0.7 * skill)), 4)
        if conf >= threshold:
            out.append((cls, round(x1, 2), round(y1, 2), round(x1 + bw, 2), round(y1 + bh, 2), conf))
    return out


def write_predictions(meta, images: list[str], threshold: float, image_out: str | None,
                      label_out: str | None) -> int:
    count = 0
    if image_out:
        common.makedirs(image_out)
    if label_out:
        common.makedirs(label_out)
    for img in images:
        dets = detections(meta, img, threshold)
        count += len(dets)
        if image_out:
            shutil.copyfile(img, os.path.join(image_out, os.path.basename(img)))
        if label_out:
            stem = os.path.splitext(os.path.basename(img))[0]
            with open(os.path.join(label_out, stem + ".txt"), "w", encoding="utf-8") as fh:
                for cls, x1, y1, x2, y2, conf in dets:
                    fh.write(f"{cls} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} "
                             f"0.00 0.00 0.00 0.00 0.00 0.00 0.00 {conf:.4f}\n")
    return count


def input_images(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    names = data.list_images(path)
    if not names:
        raise TaskFailed(f"ValueError: no images found in {path}")
    return [os.path.join(path, n) for n in names]


def inference(ctx):
    a = ctx.args
    exp = common.load_experiment(ctx, a.experiment_spec)
    net = spec.spec_network(exp, ctx.net)
    results = getattr(a, "results_dir", None)
    common.open_status(ctx, results)
    ctx.status.write("STARTED", f"Starting {catalog.NETS[net]['title']} inference.")
    meta = common.load_eval_model(ctx, a.model_path)
    if sorted(meta.get("classes", [])) != common.classes_of(exp):
        raise TaskFailed("ValueError: the number of classes in the spec does not match the model")
    if ctx.role == "deploy":
        images = [s["image"] for s in _deploy_samples(ctx, exp, with_labels=False)]
    else:
        images = input_images(a.image_dir)
    if not 0.0 <= a.threshold <= 1.0:
        raise TaskFailed("ValueError: threshold must be in [0, 1]")
    if results:
        img_out, lbl_out = os.path.join(results, "images_annotated"), os.path.join(results, "labels")
    else:
        img_out, lbl_out = a.out_image_path, a.out_label_path
    n = write_predictions(meta, images, a.threshold, img_out, lbl_out)
    say(f"Inference finished: {len(images)} images, {n} detections above {a.threshold}")
    ctx.status.write("SUCCESS", "Inference finished successfully.")


# ---------------------------------------------------------------------------------------------
# prune and export


def prune(ctx):
    a = ctx.args
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", "Starting pruning.")
    if getattr(a, "experiment_spec_path", None) and ctx.net is not None:
        common.load_experiment(ctx, a.experiment_spec_path)
    if a.equalization_criterion not in ("arithmetic_mean", "geometric_mean", "union", "intersection"):
        raise TaskFailed("AssertionError: Equalization criterion are [arithmetic_mean, "
                         "geometric_mean, union, intersection].")
    if a.normalizer not in ("L2", "max"):
        raise TaskFailed("AssertionError: normalizer options are [L2, max].")
    meta = modelio.load_model(a.model, ctx.key)
    if ctx.net is not None:
        modelio.require_network(meta, ctx.net, a.model)
    elif meta.get("kind") == "foreign" or "network" not in meta:
        raise TaskFailed(f"ValueError: {a.model} is not a trained TLT model")
    if not 0.0 <= a.pruning_threshold <= 1.0:
        raise TaskFailed("ValueError: the pruning threshold must be in [0, 1]")
    ratio = metrics.prune_ratio(a.pruning_threshold, meta["fingerprint"], a.equalization_criterion,
                                a.min_num_filters, a.pruning_granularity)
    new = dict(meta)
    new.update(kind="pruned", skill=round(meta["skill"] * (0.35 + 0.65 * ratio), 6),
               pruned_ratio=round(meta.get("pruned_ratio", 1.0) * ratio, 6),
               fingerprint=modelio.fingerprint("pruned", meta["fingerprint"], ratio, a.normalizer),
               toolkit=ctx.version)
    out = a.output_file
    if catalog.major(ctx.version) >= 5 and not out.endswith(".hdf5"):
        out += ".hdf5"  # TAO 5 saves the pruned model as <output_file>.hdf5
    if os.path.splitext(out)[1].lower() == ".tlt":
        common.require_key_for(ctx, "saving a .tlt model")
    parent = os.path.dirname(out)
    if parent:
        common.makedirs(parent)
    modelio.save_model(out, new, ctx.key)
    say(f"Pruning ratio (pruned model / original model): {ratio}")
    ctx.status.write("SUCCESS", "Pruning finished successfully.", kpi={"pruning_ratio": ratio})


def _ds_config(out_dir, net, meta, key, version, data_type):
    classes = meta["classes"]
    labels = (["background"] + classes) if net in ("ssd", "dssd") else list(classes)
    with open(os.path.join(out_dir, "labels.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(labels) + "\n")
    c, h, w = meta["input"]
    if net == "detectnet_v2":
        scale, offsets = "0.00392156862745098", "0;0;0"
    else:
        scale, offsets = "1.0", "103.939;116.779;123.68"
    lines = [
        f"net-scale-factor={scale}",
        f"offsets={offsets}",
        f"infer-dims={c};{h};{w}",
    ]
    if catalog.export_ext(version) == "etlt":
        lines.append(f"tlt-model-key={key}")
    lines += [
        "network-type=0",
        f"num-detected-classes={len(labels)}",
        f"output-blob-names={';'.join(catalog.NETS[net]['nodes'])}",
        f"model-color-format={0 if c == 3 else 2}",
        "maintain-aspect-ratio=0",
        "output-tensor-meta=0",
        f"network-mode={ {'fp32': 0, 'int8': 1, 'fp16': 2}[data_type] }",
    ]
    if catalog.export_ext(version) == "etlt":
        lines.append(f"uff-input-blob-name={catalog.NETS[net]['input']}")
    with open(os.path.join(out_dir, "nvinfer_config.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def export(ctx):
    a = ctx.args
    if a.experiment_spec:
        common.load_experiment(ctx, a.experiment_spec)
    meta = modelio.load_model(a.model, ctx.key)
    modelio.require_network(meta, ctx.net, a.model)
    net = meta["network"]  # `ssd export` of a DSSD model exports DSSD
    ext = catalog.export_ext(ctx.version)
    out = a.output_file or (os.path.splitext(a.model)[0] + "." + ext)
    if ext == "onnx" and "onnx" not in out:
        out += ".onnx"  # TAO 5 appends the backend to an output name without it
    say(f"Saving exported model to {out}")
    if os.path.exists(out):
        raise TaskFailed(f"AssertionError: Default output file {out} already exists")
    if ext == "etlt":
        common.require_key_for(ctx, "export")
    parent = os.path.dirname(out)
    if parent:
        common.makedirs(parent)
    onnx_inside = ext == "onnx" or catalog.etlt_has_onnx(ctx.version, net)
    exported = dict(meta)
    exported.update(kind="export", onnx=onnx_inside, data_type=a.data_type,
                    input_node=catalog.NETS[net]["input"],
                    output_nodes=list(catalog.NETS[net]["nodes"]), toolkit=ctx.version,
                    max_batch_size=a.max_batch_size)
    calibrate = a.data_type == "int8" and catalog.export_calibrates(ctx.version)
    if a.data_type == "int8" and not calibrate:
        if a.cal_image_dir or a.cal_data_file:
            warn("INT8 calibration is done by gen_trt_engine in this version; the calibration "
                 "options of export are ignored")
    if calibrate:
        _calibrate(ctx, a, exported)
    if ext == "onnx":
        modelio.save_onnx(out, exported)
    else:
        modelio.save_etlt(out, exported, ctx.key, None if onnx_inside else catalog.NETS[net]["input"])
    if a.engine_file:
        if catalog.major(ctx.version) >= 5:
            warn("--engine_file is ignored: build engines with gen_trt_engine in the deploy image")
        else:
            engine = dict(exported, kind="engine", precision=a.data_type,
                          trt_version=ctx.trt_version, max_batch_size=a.max_batch_size)
            modelio.save_engine(a.engine_file, engine)
            say(f"Saved TensorRT engine to {a.engine_file}")
    if a.gen_ds_config:
        _ds_config(parent or ".", net, meta, ctx.key, ctx.version, a.data_type)
        say(f"Saved DeepStream config to {os.path.join(parent or '.', 'nvinfer_config.txt')}")


def _calibrate(ctx, a, exported):
    """INT8 calibration inside export (TLT 2 / TAO 3): tensorfile + calibration cache."""
    needed = a.batches * a.batch_size
    if a.cal_image_dir:
        images = data.list_images(a.cal_image_dir)
        if len(images) < needed:
            raise TaskFailed(f"ValueError: Not enough images in {a.cal_image_dir}: "
                             f"{len(images)} < batches * batch_size = {needed}")
        if a.cal_data_file:
            common.makedirs(os.path.dirname(a.cal_data_file) or ".")
            modelio.save_tensorfile(a.cal_data_file, {"batches": a.batches,
                                                      "batch_size": a.batch_size,
                                                      "input": exported["input"]})
            say(f"Saved calibration tensorfile to {a.cal_data_file}")
    elif a.cal_data_file:
        tf = modelio.load_tensorfile(a.cal_data_file)
        if tf.get("batches", 0) * tf.get("batch_size", 0) < needed:
            raise TaskFailed(f"ValueError: the tensorfile {a.cal_data_file} holds fewer than "
                             f"{needed} images")
    else:
        raise TaskFailed("ValueError: INT8 export needs --cal_image_dir or --cal_data_file")
    try:
        modelio.save_cal_cache(a.cal_cache_file, {"network": exported["network"],
                                                  "seed": int(exported["fingerprint"][:6], 16)})
    except PermissionError:
        raise TaskFailed(f"PermissionError: [Errno 13] Permission denied: '{a.cal_cache_file}'") from None
    say(f"Saved calibration cache to {a.cal_cache_file}")
