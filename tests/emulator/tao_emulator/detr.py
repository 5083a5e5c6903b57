"""RT-DETR and DINO: train, evaluate, inference and export in the PyTorch image; gen_trt_engine, evaluate
and inference on a TensorRT engine in the deploy image. The config comes from experiment.py.

Files:
  train      <results>/model_epoch_<EEE>.pth every train.checkpoint_interval epochs (EEE counts from 0;
             written to a hidden temporary name, then renamed), <results>/<net>_model_latest.pth (a
             relative symlink to the newest), status.json, experiment.yaml
  evaluate   status.json (kpi test_mAP / test_mAP50, as strings), experiment.yaml
  inference  <results>/images_annotated/<image>, <results>/labels/<stem>.txt (KITTI + confidence)
  export     export.onnx_file (refused when it exists)
  deploy     gen_trt_engine.trt_engine; trt_evaluate/results.json (the metrics: TAO Deploy puts none in
             status.json); trt_inference/ as inference

A .pth is a zip archive (as torch.save writes) holding the emulator's model state and, when it was written
with an encryption_key, that key's hash; a .pth of another network, another key (or none for an encrypted
one) or another num_classes is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile

from . import common, det, engines, experiment, metrics, modelio, runtime
from .experiment import get, require
from .runtime import TaskFailed, say

STATE_MEMBER = "archive/tltpipe_emulator_state.json"
VERSION_MEMBER = "archive/version"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".JPEG", ".JPG", ".PNG")
# COCO's 80 detection categories among ids 1..90 (RT-DETR's remap_mscoco_category maps them to 0..79).
COCO80_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
# Output tensors of the exported detectors.
ONNX_INPUTS = ["inputs"]
ONNX_OUTPUTS = ["pred_logits", "pred_boxes"]


def lookup(role: str, task: str):
    if role == "deploy":
        return {"gen_trt_engine": gen_trt_engine, "evaluate": trt_evaluate, "inference": trt_inference}[task]
    return {"train": train, "evaluate": evaluate, "inference": inference, "export": export}[task]


# ---------------------------------------------------------------------------------------------
# task frame


def start(inv, task: str) -> str:
    """Resolve and create the results folder, save the composed config, open status.json."""
    results = experiment.results_dir(inv.cfg, task, inv.role)
    label = experiment.DEPLOY_RESULT_DIRS[task] if inv.role == "deploy" else task
    say(f"{label.capitalize()} results will be saved at: {results}")
    common.makedirs(results)
    experiment.omegaconf().OmegaConf.save(inv.cfg, os.path.join(results, "experiment.yaml"))
    inv.status.open(results, True)
    name = inv.net if inv.role == "deploy" else inv.title
    inv.status.write("STARTED", f"Starting {name} {label}.")
    return results


def finish(inv, task: str) -> None:
    label = experiment.DEPLOY_RESULT_DIRS[task] if inv.role == "deploy" else task
    inv.status.write("SUCCESS", f"{label.capitalize()} finished successfully.")


def require_key(inv) -> str | None:
    """The encryption_key, when the task is given one: a checkpoint written with a key is encrypted with
    it, one written without is plain (NVIDIA's PyTorch tasks take the key as an optional field)."""
    return inv.key or None


def key_hash(key: str) -> str:
    return hashlib.sha256(b"tltpipe-emulator-pth:" + key.encode()).hexdigest()[:16]


def check_model_choices(cfg) -> None:
    experiment.check_choice(cfg, "model.backbone")


def check_existing(cfg, key: str) -> str | None:
    """An optional path the task loads: when set it must exist."""
    path = get(cfg, key)
    if path and not os.path.exists(path):
        raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{path}' ({key})")
    return path or None


# ---------------------------------------------------------------------------------------------
# COCO data


def _sources(cfg, key: str) -> list[dict]:
    """A data source setting ({image_dir, json_file} or a list of them) as a list of dicts."""
    value = require(cfg, key, "image_dir and json_file of a COCO dataset")
    oc = experiment.omegaconf().OmegaConf
    value = oc.to_container(value, resolve=True) if oc.is_config(value) else value
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        if not isinstance(item, dict):
            raise TaskFailed(f"ValueError: {where} must be a mapping with image_dir and json_file")
        missing = [k for k in ("image_dir", "json_file") if item.get(k) is None]
        if missing:
            raise TaskFailed(f"KeyError: {where} has no {missing[0]}")
    return items


def read_coco(json_file: str, image_dir: str) -> dict:
    """The images, categories and annotations of one COCO JSON file, checked as TAO's loader reads
    them: the file parses, has images, annotations and categories, every annotation has bbox,
    category_id and area, and every image file exists (joined to image_dir unless it is empty)."""
    if not os.path.isfile(json_file):
        raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{json_file}'")
    try:
        with open(json_file, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TaskFailed(f"json.decoder.JSONDecodeError: {json_file}: {exc}") from None
    if not isinstance(doc, dict):
        raise TaskFailed(f"AssertionError: annotation file format {type(doc)} not supported: {json_file}")
    for field in ("images", "annotations", "categories"):
        if not isinstance(doc.get(field), list):
            raise TaskFailed(f"KeyError: '{field}' (COCO file {json_file})")
    if not doc["images"]:
        raise TaskFailed(f"ValueError: {json_file} lists no images")
    images = {}
    for img in doc["images"]:
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise TaskFailed(f"KeyError: every image of {json_file} needs id and file_name")
        path = os.path.join(image_dir, img["file_name"]) if image_dir else img["file_name"]
        if not os.path.isfile(path):
            raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'")
        images[img["id"]] = {"image": path, "objects": []}
    categories = {}
    for cat in doc["categories"]:
        if not isinstance(cat, dict) or "id" not in cat:
            raise TaskFailed(f"KeyError: every category of {json_file} needs an id")
        categories[int(cat["id"])] = str(cat.get("name", cat["id"]))
    for ann in doc["annotations"]:
        for field in ("image_id", "category_id", "bbox", "area"):
            if not isinstance(ann, dict) or field not in ann:
                raise TaskFailed(f"KeyError: '{field}' (an annotation of {json_file})")
        if ann["image_id"] not in images:
            raise TaskFailed(f"KeyError: {ann['image_id']} (an annotation of {json_file} refers to no "
                             "image)")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise TaskFailed(f"ValueError: bbox {box!r} of an annotation of {json_file} is not "
                             "[x, y, width, height]")
        images[ann["image_id"]]["objects"].append({"cls": int(ann["category_id"]), "box": box})
    return {"samples": list(images.values()), "categories": categories, "file": json_file}


def read_sources(cfg, key: str) -> list[dict]:
    return [read_coco(s["json_file"], s["image_dir"]) for s in _sources(cfg, key)]


def check_categories(cfg, net: str, datasets: list[dict]) -> list[int]:
    """The category ids the annotations use against dataset.num_classes -> the class labels.

    TAO's detectors use a category id as the class index (0 is background, so a dataset numbered
    from 1 sets num_classes to max id + 1; COCO's ids reach 90, hence DINO's default 91). An id
    >= num_classes is refused. RT-DETR's remap_mscoco_category maps COCO's 80 ids to 0..79 (any
    other id is a KeyError); DINO's contiguous_labels numbers the categories 1..K in id order.
    """
    num_classes = get(cfg, "dataset.num_classes")
    remap = net == "rtdetr" and get(cfg, "dataset.remap_mscoco_category")
    contiguous = net == "dino" and get(cfg, "dataset.contiguous_labels")
    ids = sorted({o["cls"] for d in datasets for s in d["samples"] for o in s["objects"]}
                 | {c for d in datasets for c in d["categories"]})
    if remap:
        unknown = [i for i in ids if i not in COCO80_IDS]
        if unknown:
            raise TaskFailed(f"KeyError: {unknown[0]} (dataset.remap_mscoco_category maps COCO's 80 "
                             "category ids only)")
        labels = [COCO80_IDS.index(i) for i in ids]
    elif contiguous:
        labels = list(range(1, len(ids) + 1))
    else:
        labels = ids
    if labels and max(labels) >= num_classes:
        raise TaskFailed(f"ValueError: category id {ids[labels.index(max(labels))]} (class index "
                         f"{max(labels)}) is out of range for dataset.num_classes={num_classes}: the "
                         "category id is the class index, so num_classes must be at least the "
                         "largest category id + 1")
    if labels and min(labels) < 0:
        raise TaskFailed(f"ValueError: category id {min(ids)} is negative")
    return labels


def class_names(datasets: list[dict]) -> list[str]:
    names = {}
    for d in datasets:
        for cid, name in d["categories"].items():
            names.setdefault(cid, name)
    return [names[c] for c in sorted(names)]


def samples_of(datasets: list[dict]) -> list[dict]:
    return [s for d in datasets for s in d["samples"]]


def read_infer_sources(cfg) -> tuple[list[str], list[str]]:
    """dataset.infer_data_sources: (images of image_dir, one folder or a list of them, class names of the
    classmap). The experiment config types image_dir as a string; the tasks take a single folder as a list
    of one."""
    require(cfg, "dataset.infer_data_sources", "image_dir and classmap file")
    dirs = require(cfg, "dataset.infer_data_sources.image_dir", "an image directory")
    classmap = require(cfg, "dataset.infer_data_sources.classmap", "a text file of class names")
    if isinstance(dirs, str):
        dirs = [dirs]
    if not os.path.isfile(classmap):
        raise TaskFailed(f"FileNotFoundError: Provided class map {classmap} does not exist!")
    with open(classmap, encoding="utf-8") as fh:
        names = [line.rstrip() for line in fh if line.strip()]
    images = []
    for d in dirs:
        if not os.path.isdir(d):
            raise TaskFailed(f"FileNotFoundError: Provided inference directory {d} does not exist!")
        images.extend(sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(IMAGE_EXTENSIONS)))
    if not images:
        raise TaskFailed(f"FileNotFoundError: No valid image with extensions {IMAGE_EXTENSIONS} found in "
                         "the provided directories")
    return images, names


# ---------------------------------------------------------------------------------------------
# fake numbers


def coco_map(skill: float, fp: str, data_fp: str) -> tuple[float, float]:
    """(mAP@[.5:.95], mAP@.5) of a model state on a dataset: deterministic, rising with skill."""
    m = skill * (0.55 + 0.15 * metrics.unit("map", data_fp)) + (metrics.unit("mapn", fp, data_fp) - 0.5) * 0.004
    m = round(max(0.0, min(0.9, m)), 6)
    return m, round(min(0.9999, m * (1.35 + 0.1 * metrics.unit("map50", data_fp))), 6)


def spec_fingerprint(cfg) -> str:
    """What seeds a training run: the model, the optimiser, the seed and num_classes (not the epochs,
    intervals or paths, so a resumed run continues the numbers of an uninterrupted one)."""
    oc = experiment.omegaconf().OmegaConf
    return modelio.fingerprint(oc.to_container(cfg.model, resolve=False),
                               oc.to_container(cfg.train.optim, resolve=False),
                               get(cfg, "train.seed"), get(cfg, "dataset.num_classes"))


# ---------------------------------------------------------------------------------------------
# checkpoints (.pth)


def save_pth(path: str, meta: dict) -> None:
    """Write under a hidden temporary name in the same folder, then rename: a cut-off write never
    has the final name."""
    parent = os.path.dirname(path) or "."
    common.makedirs(parent)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            zf.writestr(VERSION_MEMBER, "3\n")
            zf.writestr(STATE_MEMBER, json.dumps(meta, sort_keys=True))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_pth(path: str, net: str, key: str | None) -> dict:
    if not os.path.exists(path):
        raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'")
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read(STATE_MEMBER).decode())
    except zipfile.BadZipFile:
        raise TaskFailed("RuntimeError: PytorchStreamReader failed reading zip archive: failed finding "
                         f"central directory ({path})") from None
    except (KeyError, ValueError):
        raise TaskFailed(f"RuntimeError: {path} is not a TAO {net} checkpoint") from None
    if meta.get("tao_model") != net:
        raise TaskFailed(f"RuntimeError: Error(s) in loading state_dict: {path} is a "
                         f"{meta.get('tao_model')} checkpoint, not {net}")
    if meta.get("state_dict_encrypted"):
        if not key:
            raise TaskFailed("PermissionError: Cannot access model state dict without the encryption key")
        if meta.get("key_hash") != key_hash(key):
            raise TaskFailed(f"PermissionError: Cannot decrypt the checkpoint {path}: the "
                             "encryption_key is not the one it was saved with")
    return meta


def load_for_task(inv, key: str, ckpt_key: str) -> dict:
    """The checkpoint a task reads (`evaluate.checkpoint`, ...), built into the spec's model."""
    path = get(inv.cfg, ckpt_key)
    meta = load_pth(path, inv.net, key)
    num_classes = get(inv.cfg, "dataset.num_classes")
    if meta.get("num_classes") != num_classes:
        raise TaskFailed(f"RuntimeError: Error(s) in loading state_dict: size mismatch for the class "
                         f"embedding: the checkpoint {path} has {meta.get('num_classes')} classes, "
                         f"dataset.num_classes is {num_classes}")
    return meta


def latest_link(net: str) -> str:
    return f"{net}_model_latest.pth"


def _link_latest(results: str, net: str, target: str) -> None:
    """<net>_model_latest.pth -> the newest checkpoint (relative, replaced atomically)."""
    link = os.path.join(results, latest_link(net))
    tmp = link + ".partial"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.basename(target), tmp)
    os.replace(tmp, link)


def resume_checkpoint(cfg, results: str) -> str | None:
    """train.resume_training_checkpoint_path, else the checkpoint the `*_latest.pth` link of the
    results folder points to (TAO resumes from it by itself)."""
    path = get(cfg, "train.resume_training_checkpoint_path")
    if not path:
        links = sorted(n for n in os.listdir(results) if n.endswith("_latest.pth")) if os.path.isdir(results) else []
        for name in links:
            target = os.path.realpath(os.path.join(results, name))
            if os.path.exists(target):
                path = target
                break
    if path and not (path.endswith(".pth") or path.endswith(".tlt")):
        raise TaskFailed("ValueError: Resume checkpoint has an invalid file format; it must be either "
                         "a .tlt or a .pth")
    return path or None


# ---------------------------------------------------------------------------------------------
# train


def _train_settings(cfg) -> tuple[int, int, int, str]:
    epochs = get(cfg, "train.num_epochs")
    ckpt_every = get(cfg, "train.checkpoint_interval")
    val_every = get(cfg, "train.validation_interval")
    unit = get(cfg, "train.checkpoint_interval_unit")
    for key, value in (("train.num_epochs", epochs), ("train.checkpoint_interval", ckpt_every),
                       ("train.validation_interval", val_every)):
        if value < 1:
            raise TaskFailed(f"ValueError: {key} must be >= 1, got {value}")
    if ckpt_every > epochs:
        raise TaskFailed(f"AssertionError: Checkpoint interval {ckpt_every} > Number of epochs {epochs}. "
                         f"Please set experiment_config.train.checkpoint_interval <= {epochs}")
    if val_every > epochs:
        raise TaskFailed(f"AssertionError: Validation interval {val_every} > Number of epochs {epochs}. "
                         f"Please set experiment_config.train.validation_interval <= {epochs}")
    if unit not in ("epoch", "step"):
        raise TaskFailed(f"NotImplementedError: train.checkpoint_interval_unit={unit} is not supported; "
                         "supported: epoch, step")
    return epochs, ckpt_every, val_every, unit


def _saves_at(epoch: int, steps: int, every: int, unit: str) -> bool:
    """Whether epoch (from 0) ends with a checkpoint: every `every` epochs, or with unit "step" when
    a multiple of `every` steps falls in the epoch."""
    if unit == "epoch":
        return (epoch + 1) % every == 0
    return (epoch + 1) * steps // every > epoch * steps // every


def train(inv):
    cfg, net = inv.cfg, inv.net
    results = start(inv, "train")
    key = require_key(inv)
    epochs, ckpt_every, val_every, unit = _train_settings(cfg)
    check_model_choices(cfg)
    for choice in ("train.optim.optimizer", "train.optim.lr_scheduler"):
        experiment.check_choice(cfg, choice)
    experiment.check_choice(cfg, "train.precision", lower=True)
    train_sets = read_sources(cfg, "dataset.train_data_sources")
    val_sets = read_sources(cfg, "dataset.val_data_sources")
    check_categories(cfg, net, train_sets + val_sets)
    pretrained = bool(check_existing(cfg, "train.pretrained_model_path")
                      or check_existing(cfg, "model.pretrained_backbone_path"))
    train_samples, val_fp = samples_of(train_sets), common.data_fp(samples_of(val_sets))
    batch = get(cfg, "dataset.batch_size")
    steps = common.steps_per_epoch(len(train_samples), batch, len(get(cfg, "train.gpu_ids") or [0]))
    spec_fp = spec_fingerprint(cfg)
    meta = {"format": "tao-emulator/1", "kind": "checkpoint", "tao_model": net, "network": net,
            "num_classes": get(cfg, "dataset.num_classes"), "classes": class_names(train_sets),
            "backbone": get(cfg, "model.backbone"), "input": [3, 640, 640], "pretrained": pretrained,
            "toolkit": inv.version, "state_dict_encrypted": bool(key), "key_hash": key_hash(key) if key else None,
            "epoch": -1, "skill": 0.05 if pretrained else 0.0,
            "fingerprint": modelio.fingerprint("init", spec_fp, common.data_fp(train_samples))}
    resume = resume_checkpoint(cfg, results)
    if resume:
        meta = load_pth(resume, net, key)
        if meta.get("num_classes") != get(cfg, "dataset.num_classes"):
            raise TaskFailed(f"RuntimeError: Error(s) in loading state_dict: size mismatch for the class "
                             f"embedding: {resume} has {meta.get('num_classes')} classes, "
                             f"dataset.num_classes is {get(cfg, 'dataset.num_classes')}")
        say(f"Setting resume checkpoint to {resume}")
        inv.status.write("RUNNING", f"Resuming training from checkpoint: {resume}")
    _loop(inv, results, meta, train_samples, val_fp, epochs, ckpt_every, val_every, unit, steps, spec_fp)
    finish(inv, "train")


def _loop(inv, results, meta, train_samples, val_fp, epochs, ckpt_every, val_every, unit, steps,
          spec_fp) -> None:
    net = inv.net
    cap = metrics.skill_cap({"pretrained": meta["pretrained"]})
    quality = metrics.hyper_quality(net, get(inv.cfg, "train.optim.lr"), get(inv.cfg, "dataset.batch_size"))
    first = meta["epoch"] + 1
    fail_at = runtime.env_int("TAO_EMU_FAIL_AT_EPOCH")
    exit_code = runtime.env_int("TAO_EMU_EXIT_CODE")
    exit_at = runtime.env_int("TAO_EMU_EXIT_AT_EPOCH", first + (epochs - first) // 2)
    truncate = runtime.env_int("TAO_EMU_TRUNCATE_CHECKPOINT")
    for epoch in range(first, epochs):
        if runtime.env_flag("TAO_EMU_HANG"):
            say(f"Epoch {epoch}: 0%|          | 0/{steps}")
            runtime.hang_forever()
        if exit_code is not None and epoch == exit_at:
            runtime.hard_exit(exit_code)
        if fail_at is not None and epoch == fail_at:
            raise TaskFailed(f"RuntimeError: injected failure at epoch {epoch} (TAO_EMU_FAIL_AT_EPOCH)")
        skill = metrics.train_step(meta["skill"], cap, len(train_samples), meta["fingerprint"], epoch, quality)
        fp = modelio.fingerprint(meta["fingerprint"], spec_fp, epoch)
        runtime.sleep(runtime.epoch_seconds())
        loss = metrics.loss(skill, fp, epoch)
        meta = dict(meta, epoch=epoch, skill=skill, fingerprint=fp, global_step=(epoch + 1) * steps)
        say(f"Epoch {epoch}: 100%|##########| {steps}/{steps} [train_loss={loss:.4f}]")
        extra = {"epoch": epoch + 1, "max_epoch": epochs}
        inv.status.write("RUNNING", "Train metrics generated.", kpi={"train_loss": loss}, **extra)
        if (epoch + 1) % val_every == 0:
            m, m50 = coco_map(skill, fp, val_fp)
            vloss = metrics.validation_loss(skill, fp, epoch)
            say(f"Validation mAP : {m}")
            say(f"Validation mAP50 : {m50}")
            inv.status.write("RUNNING", "Eval metrics generated.",
                             kpi={"val_mAP": str(m), "val_mAP50": str(m50), "val_loss": vloss}, **extra)
        if _saves_at(epoch, steps, ckpt_every, unit):
            path = os.path.join(results, f"model_epoch_{epoch:03d}.pth")
            if truncate is not None and epoch == truncate:
                open(path, "wb").close()
                say(f"(emulator: TAO_EMU_TRUNCATE_CHECKPOINT={epoch}, wrote an empty checkpoint)")
            else:
                save_pth(path, meta)
            _link_latest(results, net, path)
            say(f"Epoch {epoch}: checkpoint saved to {path}")
    if first >= epochs:
        say(f"Resumed at epoch {first}, num_epochs is {epochs}: nothing to train.")
    say(f"`Trainer.fit` stopped: `max_epochs={epochs}` reached.")


# ---------------------------------------------------------------------------------------------
# evaluate, inference, export (PyTorch image)


def model_scores(meta: dict, test_sets: list[dict]) -> tuple[float, float]:
    return coco_map(meta["skill"], meta["fingerprint"], common.data_fp(samples_of(test_sets)))


def evaluate(inv):
    cfg = inv.cfg
    start(inv, "evaluate")
    key = require_key(inv)
    check_model_choices(cfg)
    meta = load_for_task(inv, key, "evaluate.checkpoint")
    test_sets = read_sources(cfg, "dataset.test_data_sources")
    check_categories(cfg, inv.net, test_sets)
    m, m50 = model_scores(meta, test_sets)
    say(f"test_mAP: {m}")
    say(f"test_mAP50: {m50}")
    inv.status.write("RUNNING", "Test metrics generated.", kpi={"test_mAP": str(m), "test_mAP50": str(m50)})
    finish(inv, "evaluate")


def _predict(inv, results: str, meta: dict, threshold: float) -> None:
    images, names = read_infer_sources(inv.cfg)
    model = {"fingerprint": meta["fingerprint"], "classes": names or ["object"],
             "skill": meta["skill"], "input": meta.get("input", [3, 640, 640])}
    n = det.write_predictions(model, images, threshold, os.path.join(results, "images_annotated"),
                              os.path.join(results, "labels"))
    say(f"Inference finished: {len(images)} images, {n} detections above {threshold}")


def inference(inv):
    cfg = inv.cfg
    results = start(inv, "inference")
    key = require_key(inv)
    check_model_choices(cfg)
    meta = load_for_task(inv, key, "inference.checkpoint")
    _predict(inv, results, meta, get(cfg, "inference.conf_threshold"))
    finish(inv, "inference")


def _nvdsinfer_files(inv, out_dir: str, meta: dict) -> None:
    """export.serialize_nvdsinfer: labels.txt (class names of the validation set, with "background"
    first when num_classes counts it) and nvdsinfer_config.yaml beside the ONNX file."""
    names = class_names(read_sources(inv.cfg, "dataset.val_data_sources"))
    num_classes = get(inv.cfg, "dataset.num_classes")
    if len(names) != num_classes:
        if num_classes != len(names) + 1:
            raise TaskFailed(f"AssertionError: Number of classes in validation dataset label map "
                             f"({len(names)}) does not match dataset.num_classes ({num_classes})")
        names = ["background"] + names
    with open(os.path.join(out_dir, "labels.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(names) + "\n")
    c, h, w = meta["input"]
    with open(os.path.join(out_dir, "nvdsinfer_config.yaml"), "w", encoding="utf-8") as fh:
        fh.write(f"property:\n  onnx-file: {os.path.basename(get(inv.cfg, 'export.onnx_file'))}\n"
                 f"  labelfile-path: labels.txt\n  num-detected-classes: {len(names)}\n"
                 f"  infer-dims: {c};{h};{w}\n  output-blob-names: {';'.join(ONNX_OUTPUTS)}\n")


def export(inv):
    cfg = inv.cfg
    start(inv, "export")
    key = require_key(inv)
    check_model_choices(cfg)
    get(cfg, "export.checkpoint")  # read first: unset, it fails before the output is checked
    out = get(cfg, "export.onnx_file")
    if os.path.exists(out):
        raise TaskFailed(f"AssertionError: Default onnx file {out} already exists")
    meta = load_for_task(inv, key, "export.checkpoint")
    out_dir = os.path.dirname(os.path.realpath(out))
    common.makedirs(out_dir)
    shape = [get(cfg, "export.input_channel"), get(cfg, "export.input_height"), get(cfg, "export.input_width")]
    onnx = dict(meta, kind="onnx", input=shape, batch_size=get(cfg, "export.batch_size"),
                opset=get(cfg, "export.opset_version"), input_names=ONNX_INPUTS, output_names=ONNX_OUTPUTS)
    for private in ("key_hash", "state_dict_encrypted"):
        onnx.pop(private, None)
    if get(cfg, "export.serialize_nvdsinfer"):
        _nvdsinfer_files(inv, out_dir, onnx)
    modelio.save_onnx(out, onnx)
    say(f"ONNX file stored at {out}")
    finish(inv, "export")


# ---------------------------------------------------------------------------------------------
# TensorRT tasks (deploy image)


def _load_onnx(inv, path: str) -> dict:
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".onnx", ".etlt", ".uff"):
        raise TaskFailed("NotImplementedError: TAO Deploy gen_trt_engine action accepts either .onnx, "
                         ".uff or .etlt file extension")
    if not os.path.isfile(path):
        raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'")
    meta = modelio.load_etlt(path, inv.key)[1] if ext == ".etlt" else modelio.load_onnx(path)
    if meta.get("network") != inv.net:
        raise TaskFailed(f"[TensorRT] ERROR: ModelImporter: {path} is a {meta.get('network')} model, "
                         f"not {inv.net}: the network's outputs {ONNX_OUTPUTS} were not found")
    return meta


def _calibrate(inv, meta: dict) -> None:
    cal = "gen_trt_engine.tensorrt.calibration"
    dirs = get(inv.cfg, f"{cal}.cal_image_dir")
    cache = get(inv.cfg, f"{cal}.cal_cache_file")
    batch_size, batches = get(inv.cfg, f"{cal}.cal_batch_size"), get(inv.cfg, f"{cal}.cal_batches")
    if batches <= 0:
        raise TaskFailed(f"ValueError: Calibration number of batches {batches} is non-positive.")
    if batch_size <= 0:
        raise TaskFailed(f"ValueError: Calibration batch size {batch_size} is non-positive.")
    count = 0
    for d in dirs:
        if not os.path.isdir(d):
            raise TaskFailed(f"FileNotFoundError: Calibration image directory {d} not found.")
        n = sum(1 for _, _, names in os.walk(d) for name in names if name.endswith(IMAGE_EXTENSIONS))
        if n == 0:
            raise TaskFailed(f"FileNotFoundError: Calibration image directory {d} is empty.")
        count += n
    if count < batches * batch_size:
        raise TaskFailed(f"ValueError: Number of calibration images ({count}) should be larger than "
                         f"batches * batch_size ({batches * batch_size}).")
    common.makedirs(os.path.dirname(cache) or ".")
    modelio.save_cal_cache(cache, {"network": inv.net, "seed": int(meta["fingerprint"][:6], 16)})
    say(f"Calibration cache saved to {cache}")


def gen_trt_engine(inv):
    cfg = inv.cfg
    start(inv, "gen_trt_engine")
    onnx_file = get(cfg, "gen_trt_engine.onnx_file")
    engine = get(cfg, "gen_trt_engine.trt_engine")
    meta = _load_onnx(inv, onnx_file)
    precision = experiment.check_choice(cfg, "gen_trt_engine.tensorrt.data_type", lower=True).lower()
    trt = "gen_trt_engine.tensorrt"
    lo, opt, hi = (get(cfg, f"{trt}.{k}_batch_size") for k in ("min", "opt", "max"))
    if not lo <= opt <= hi:
        raise TaskFailed("ValueError: need tensorrt.min_batch_size <= opt_batch_size <= max_batch_size")
    if precision == "int8":
        _calibrate(inv, meta)
    if engine:
        common.makedirs(os.path.dirname(engine) or ".")
        modelio.save_engine(engine, engines.engine_meta(meta, inv, precision, hi))
        say(f"TensorRT engine saved to {engine}")
    else:  # TAO Deploy builds into a temporary file that nobody keeps
        say("gen_trt_engine.trt_engine is null: the engine was built into a temporary file.")
    say("Engine build finished successfully.")
    finish(inv, "gen_trt_engine")


def _load_engine(inv, key: str) -> dict:
    path = require(inv.cfg, key, "the TensorRT engine built by gen_trt_engine")
    if not os.path.exists(path):
        raise TaskFailed(f"FileNotFoundError: Provided {key} at {path} does not exist!")
    meta = modelio.load_engine(path, inv.trt_version)
    if meta.get("network") != inv.net:
        raise TaskFailed(f"[TensorRT] ERROR: {path} is a {meta.get('network')} engine, not {inv.net}")
    return meta


def trt_evaluate(inv):
    """TAO Deploy's evaluate logs the COCO metrics and writes them to results.json only: its
    status.json has no kpi."""
    results = start(inv, "evaluate")
    meta = _load_engine(inv, "evaluate.trt_engine")
    test_sets = read_sources(inv.cfg, "dataset.test_data_sources")
    m, m50 = model_scores(meta, test_sets)
    fp = modelio.fingerprint(meta["fingerprint"], common.data_fp(samples_of(test_sets)))
    scores = {"AP": m, "AP50": m50, "AP75": round(m * (1.02 + 0.1 * metrics.unit("ap75", fp)), 6)}
    for name, scale in (("APs", 0.45), ("APm", 0.9), ("APl", 1.15), ("ARmax1", 0.8), ("ARmax10", 1.2),
                        ("ARmax100", 1.3), ("ARs", 0.6), ("ARm", 1.25), ("ARl", 1.4)):
        scores[name] = round(min(0.9999, m * scale * (0.95 + 0.1 * metrics.unit(name, fp))), 6)
    for name, value in sorted(scores.items()):
        say(f"{name}: {value:.9f}")
    common.write_results_json(results, scores)
    finish(inv, "evaluate")


def trt_inference(inv):
    results = start(inv, "inference")
    meta = _load_engine(inv, "inference.trt_engine")
    _predict(inv, results, meta, get(inv.cfg, "inference.conf_threshold"))
    finish(inv, "inference")
