"""Helpers shared by the tasks: spec loading, data gathering, model state, console blocks."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os

from . import catalog, data, metrics, modelio, spec
from .runtime import TaskFailed, say


def makedirs(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except PermissionError:
        raise TaskFailed(f"PermissionError: [Errno 13] Permission denied: '{path}'") from None
    except FileExistsError:
        raise TaskFailed(f"FileExistsError: [Errno 17] File exists: '{path}'") from None


def open_status(ctx, results_dir: str | None) -> None:
    if results_dir:
        makedirs(results_dir)
    ctx.status.open(results_dir, catalog.writes_status_json(ctx.version))


def write_results_json(results_dir: str, kpi: dict) -> None:
    """TAO Deploy's evaluate stores its numbers in RESULTS/results.json."""
    makedirs(results_dir)
    with open(os.path.join(results_dir, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(kpi, fh)


def file_fp(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:24]


def load_experiment(ctx, path: str, net: str | None = None):
    net = net or ctx.net
    try:
        exp = spec.load(ctx.version, catalog.net_info(net, ctx.version)["schema"], path)
        if net == "detectnet_v2":
            spec.check_detectnet_experiment(exp)
        else:
            spec.check_detection_experiment(exp, net)
    except spec.SpecError as exc:
        raise TaskFailed(str(exc)) from None
    return exp


def arch_of(net: str, exp) -> tuple[str, int]:
    if net == "detectnet_v2":
        arch, nlayers = exp.model_config.arch, exp.model_config.num_layers
    else:
        cfg = getattr(exp, spec.config_field(exp, net))
        arch, nlayers = cfg.arch, cfg.nlayers
    valid = catalog.ARCHS[net]
    if arch not in valid:
        raise TaskFailed(f"ValueError: Unsupported arch: {arch!r} for {net}; supported: "
                         f"{', '.join(sorted(valid))}")
    if valid[arch] is not None and nlayers not in valid[arch]:
        raise TaskFailed(f"ValueError: {arch} with nlayers {nlayers} is not supported; "
                         f"choose one of {list(valid[arch])}")
    return arch, int(nlayers)


def class_map(exp) -> dict[str, str]:
    return {k.lower(): v for k, v in spec.mapping(exp.dataset_config.target_class_mapping).items()}


def classes_of(exp) -> list[str]:
    return sorted(set(class_map(exp).values()))


def input_of(net: str, exp) -> list[int]:
    return list(spec.input_shape(exp))


def check_resolution(samples, inp, title: str) -> None:
    """DetectNet_v2 (and TLT 2.0's SSD family and YOLO) read images at the training size as they are."""
    _, h, w = inp
    for s in samples:
        size = data.image_size(s["image"])
        if size is not None and size != (w, h):
            raise TaskFailed(f"ValueError: image {s['image']} is {size[0]}x{size[1]}, but "
                             f"{title} trains at {w}x{h}: resize the dataset offline "
                             "(output_image_width / output_image_height)")


# ---------------------------------------------------------------------------------------------
# data


def _map_objects(objects, cmap, keep_difficult=True):
    out = []
    for obj in objects:
        target = cmap.get(obj["cls"].lower())
        if target is None:
            continue
        if obj.get("difficult") and not keep_difficult:
            continue
        out.append({"cls": target, "box": obj["box"]})
    return out


def _labels_format(src) -> str | None:
    if "labels_format" in src.DESCRIPTOR.oneofs_by_name:  # YOLO's data source
        return src.WhichOneof("labels_format")
    if src.tfrecords_path:
        return "tfrecords_path"
    if "label_directory_path" in src.DESCRIPTOR.fields_by_name and src.label_directory_path:
        return "label_directory_path"
    return None


def _source_samples(src, ext):
    """-> list of (fold or None, sample)."""
    which = _labels_format(src)
    if which == "tfrecords_path":
        if not src.image_directory_path:
            raise TaskFailed("ValueError: data_sources.image_directory_path is required with "
                             "tfrecords_path")
        return [
            (fold, {"image": data.resolve_image(src.image_directory_path, e, ext),
                    "objects": e["objects"], "frame_id": e["frame_id"]})
            for fold, e in data.records_from_glob(src.tfrecords_path)
        ]
    if which == "label_directory_path":
        return [(None, s) for s in data.samples_from_label_dirs(src.image_directory_path,
                                                                 src.label_directory_path, ext)]
    raise TaskFailed("ValueError: a data source needs tfrecords_path or label_directory_path")


def _validation_split(net: str, ds):
    """-> (validation fold or None, validation data sources) of a dataset_config.

    DetectNet_v2's layout (and TLT 2.0's): a oneof of validation_fold / validation_data_source.
    YOLO: validation_data_sources, else the TFRecords fold validation_fold (0 by default).
    SSD/DSSD/RetinaNet: validation_data_sources only; SSD's loader drops the ones without both an
    image and a label directory.
    """
    fields = ds.DESCRIPTOR.fields_by_name
    if "validation_data_source" in fields:
        split = ds.WhichOneof("dataset_split_type")
        if split == "validation_fold":
            return ds.validation_fold, []
        return None, [ds.validation_data_source] if split else []
    sources = list(ds.validation_data_sources)
    if "validation_fold" in fields:
        if sources:
            return None, sources
        if _labels_format(ds.data_sources[0]) != "tfrecords_path":
            raise TaskFailed("AssertionError: Validation dataset specified by `validation_fold` "
                             "requires the training label format to be TFRecords.")
        return ds.validation_fold, []
    if catalog.family(net) == "ssd":
        sources = [s for s in sources if s.image_directory_path and s.label_directory_path]
    return None, sources


def gather(net: str, exp, check_images: bool = True) -> tuple[list[dict], list[dict]]:
    """(training samples, validation samples) of an experiment, with target classes mapped."""
    ds = exp.dataset_config
    fields = ds.DESCRIPTOR.fields_by_name
    ext = (ds.image_extension or None) if "image_extension" in fields else None
    cmap = class_map(exp)
    fold, val_sources = _validation_split(net, ds)
    train, val = [], []
    for src in ds.data_sources:
        for f, sample in _source_samples(src, ext):
            if fold is not None and f == fold:
                val.append(sample)
            else:
                train.append(sample)
    for src in val_sources:
        val.extend(s for _, s in _source_samples(src, ext))
    keep_difficult = ds.include_difficult_in_training if "include_difficult_in_training" in fields else True
    train = [dict(s, objects=_map_objects(s["objects"], cmap, keep_difficult)) for s in train]
    val = [dict(s, objects=_map_objects(s["objects"], cmap)) for s in val]
    if check_images:
        for s in train + val:
            if not os.path.isfile(s["image"]):
                hint = ""
                if s.get("frame_id"):
                    hint = (f" (the record's frame id {s['frame_id']!r} is joined to "
                            "data_sources.image_directory_path, which must be the dataset root "
                            "that holds kitti_config.image_dir_name)")
                raise TaskFailed(f"tensorflow.python.framework.errors_impl.NotFoundError: "
                                 f"{s['image']}; No such file or directory{hint}")
    return train, val


def deploy_directories(exp, image_dir: str | None, label_dir: str | None) -> list[tuple[str, str | None]]:
    """TAO Deploy evaluate/inference: -i/-l, else the image (and label) directories of
    dataset_config.validation_data_sources."""
    sources = list(getattr(exp.dataset_config, "validation_data_sources", []))
    images = [image_dir] if image_dir else [s.image_directory_path for s in sources]
    labels = [label_dir] if label_dir else [getattr(s, "label_directory_path", "") for s in sources]
    return list(zip(images, labels + [None] * (len(images) - len(labels))))


def data_fp(samples: list[dict]) -> str:
    return modelio.fingerprint(sorted((os.path.basename(s["image"]), len(s["objects"]))
                                      for s in samples))


# ---------------------------------------------------------------------------------------------
# models


def check_compatible(meta: dict, net: str, arch: str, nlayers: int, classes: list[str], path: str):
    modelio.require_network(meta, net, path)
    if meta.get("arch") != arch or (arch in catalog.NLAYER_ARCHS and meta.get("nlayers") != nlayers):
        raise TaskFailed(f"ValueError: the model {path} is a {meta.get('arch')}"
                         f"{meta.get('nlayers', '')} model but the spec asks for {arch}{nlayers}")
    if sorted(meta.get("classes", [])) != list(classes):
        raise TaskFailed(f"ValueError: the model {path} was trained for classes "
                         f"{meta.get('classes')} but the spec maps to {classes} "
                         "(number of classes does not match)")


def load_eval_model(ctx, path: str) -> dict:
    """A Keras model (.tlt/.hdf5) or, in TAO 3/4 TF and deploy images, a TensorRT engine."""
    if ctx.role == "deploy":
        meta = modelio.load_engine(path, ctx.trt_version)
        modelio.require_network(meta, ctx.net, path)
        return meta
    if modelio.is_keras_model(path):
        meta = modelio.load_model(path, ctx.key)
        modelio.require_network(meta, ctx.net, path)
        return meta
    if ctx.role == "tf" and ctx.major >= 5:
        raise TaskFailed(f"ValueError: Unsupported model file {path}: the TAO 5 TF image "
                         "evaluates .hdf5 models; run TensorRT engines in the deploy image")
    meta = modelio.load_engine(path, ctx.trt_version)
    modelio.require_network(meta, ctx.net, path)
    return meta


def model_meta(net, arch, nlayers, classes, inp, *, kind, epoch, skill, pretrained, pruned_ratio,
               qat, fp, version) -> dict:
    return {
        "format": "tao-emulator/1",
        "kind": kind,
        "network": net,
        "arch": arch,
        "nlayers": nlayers,
        "classes": list(classes),
        "input": list(inp),
        "epoch": epoch,
        "skill": skill,
        "pretrained": bool(pretrained),
        "pruned_ratio": round(pruned_ratio, 6),
        "qat": bool(qat),
        "fingerprint": fp,
        "toolkit": version,
    }


# ---------------------------------------------------------------------------------------------
# console


def ap_block(aps: dict[str, float]) -> float:
    mean = round(sum(aps.values()) / len(aps), 6) if aps else 0.0
    say("*******************************")
    for cls, ap in aps.items():
        say("{:<14}{:<6}{}".format(cls, "AP", ap))
    say("{:<14}{:<6}{}".format("", "mAP", mean))
    say("*******************************")
    return mean


def detectnet_ap_table(aps: dict[str, float]) -> float:
    mean = round(100.0 * sum(aps.values()) / len(aps), 4) if aps else 0.0
    say(f"Mean average_precision (in %): {mean:.4f}")
    say("")
    say("class name      average precision (in %)")
    say("------------  --------------------------")
    for cls, ap in aps.items():
        say(f"{cls:<12}  {100.0 * ap:>26.4f}")
    say("")
    return mean


def keras_progress(steps: int, loss_value: float, fp: str, epoch: int) -> str:
    step_ms = 120 + int(180 * metrics.unit("step_ms", fp, epoch))
    total_s = max(1, int(round(steps * step_ms / 1000.0)))
    width = len(str(steps))
    for done in sorted({max(1, steps // 3), max(1, (2 * steps) // 3)}):
        if done >= steps:
            continue
        filled = max(1, int(30 * done / steps))
        bar = "=" * (filled - 1) + ">" + "." * (30 - filled)
        eta = int((steps - done) * step_ms / 1000.0)
        say(f"{done:>{width}}/{steps} [{bar}] - ETA: {eta}s - loss: {loss_value + 0.05:.4f}", end="\r")
    say(f"{steps}/{steps} [{'=' * 30}] - {total_s}s {step_ms}ms/step - loss: {loss_value:.4f}")
    return total_s


def steps_per_epoch(n_images: int, batch: int, gpus: int) -> int:
    return max(1, math.ceil(n_images / max(1, batch * max(1, gpus))))


def td(seconds: float) -> str:
    return str(_dt.timedelta(seconds=round(seconds, 6)))


def require_key_for(ctx, what: str) -> None:
    if catalog.encrypted_checkpoints(ctx.version) and not ctx.key:
        raise TaskFailed(f"ValueError: {what} needs the encryption key: pass -k/--key")


def fmt(v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return repr(v) if isinstance(v, float) else str(v)
