"""dataset_convert (KITTI -> sharded records) and YOLO kmeans anchors."""

from __future__ import annotations

import json
import math
import os
import random

from . import common, data, spec
from .runtime import TaskFailed, say


def dataset_convert(ctx):
    a = ctx.args
    try:
        cfg = spec.load(ctx.version, "dataset_convert", a.dataset_export_spec)
        spec.check_dataset_export(cfg)
    except spec.SpecError as exc:
        raise TaskFailed(str(exc)) from None
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", "Starting dataset conversion.")
    if cfg.WhichOneof("convert_config_type") == "coco_config":
        raise TaskFailed("NotImplementedError: the tltpipe emulator converts KITTI datasets only")
    kc = cfg.kitti_config
    root = kc.root_directory_path
    image_dir = os.path.join(root, kc.image_dir_name)
    label_dir = os.path.join(root, kc.label_dir_name)
    ext = kc.image_extension
    if not ext:
        raise TaskFailed("ValueError: kitti_config.image_extension is not set")
    for d in (root, image_dir, label_dir):
        if not os.path.isdir(d):
            raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{d}'")
    if kc.num_partitions < 1 or kc.num_shards < 1:
        raise TaskFailed("ValueError: num_partitions and num_shards must be >= 1")
    names = data.list_images(image_dir, ext)
    if not names:
        raise TaskFailed(f"ValueError: no images with extension {ext!r} in {image_dir}")
    frames = []
    for name in names:
        frame = name[: -len(ext)]
        label = os.path.join(label_dir, frame + ".txt")
        if not os.path.isfile(label):
            raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{label}' "
                             f"(no label for image {os.path.join(image_dir, name)})")
        frames.append((frame, data.read_kitti(label)))
    mode = kc.partition_mode or "random"
    if mode == "random":
        if kc.num_partitions != 2:
            raise TaskFailed("ValueError: the random partition mode needs num_partitions 2 "
                             f"(got {kc.num_partitions})")
        if not 0 <= kc.val_split < 100:
            raise TaskFailed(f"ValueError: val_split is a percentage in [0, 100), got {kc.val_split}")
        n_val = int(len(frames) * kc.val_split / 100.0)
        folds = [frames[:n_val], frames[n_val:]]
    elif mode == "sequence":
        if not kc.kitti_sequence_to_frames_file:
            raise TaskFailed("ValueError: the sequence partition mode needs "
                             "kitti_sequence_to_frames_file")
        with open(os.path.join(root, kc.kitti_sequence_to_frames_file), encoding="utf-8") as fh:
            seq_map = json.load(fh)
        by_frame = dict(frames)
        folds = [[] for _ in range(kc.num_partitions)]
        for i, seq in enumerate(sorted(seq_map)):
            for frame in seq_map[seq]:
                if frame in by_frame:
                    folds[i % kc.num_partitions].append((frame, by_frame[frame]))
    else:
        raise TaskFailed(f"ValueError: unknown partition_mode {mode!r} (random or sequence)")
    out_dir = os.path.dirname(a.output_filename)
    if out_dir:
        common.makedirs(out_dir)
    counts: dict[str, int] = {}
    P, S = len(folds), kc.num_shards
    for p, fold in enumerate(folds):
        per_shard = math.ceil(len(fold) / S) if fold else 0
        say(f"Writing partition {p}, shard 0 (of {S}), {len(fold)} images")
        for s in range(S):
            chunk = fold[s * per_shard:(s + 1) * per_shard] if per_shard else []
            entries = []
            for frame, objects in chunk:
                for obj in objects:
                    counts[obj["cls"]] = counts.get(obj["cls"], 0) + 1
                entries.append({"frame_id": os.path.join(kc.image_dir_name, frame), "ext": ext,
                                "objects": objects})
            path = f"{a.output_filename}-fold-{p:03d}-of-{P:03d}-shard-{s:05d}-of-{S:05d}"
            data.write_shard(path, entries)
    say("Wrote the following numbers of objects:")
    for cls in sorted(counts):
        say(f"b'{cls}': {counts[cls]}")
    say("Tfrecords generation complete.")
    ctx.status.write("SUCCESS", "Dataset conversion finished successfully.")


# ---------------------------------------------------------------------------------------------


def _iou_wh(a, b):
    inter = min(a[0], b[0]) * min(a[1], b[1])
    return inter / (a[0] * a[1] + b[0] * b[1] - inter)


def kmeans(ctx):
    a = ctx.args
    common.open_status(ctx, a.results_dir)
    ctx.status.write("STARTED", "Starting k-means.")
    if len(a.label_folders) != len(a.image_folders):
        raise TaskFailed("AssertionError: Labels and images folder must be 1-1 match")
    if a.size_x <= 0 or a.size_y <= 0 or a.num_clusters < 1:
        raise TaskFailed("ValueError: -x, -y and -n must be positive")
    boxes = []
    for ldir, idir in zip(a.label_folders, a.image_folders):
        for name in data.list_images(idir):
            stem = os.path.splitext(name)[0]
            label = os.path.join(ldir, stem + ".txt")
            if not os.path.isfile(label):
                continue
            size = data.image_size(os.path.join(idir, name))
            if size is None:
                raise TaskFailed(f"ValueError: cannot read image size of {os.path.join(idir, name)}")
            w_img, h_img = size
            for obj in data.read_kitti(label):
                x1, y1, x2, y2 = obj["box"]
                bw = (x2 - x1) * a.size_x / w_img
                bh = (y2 - y1) * a.size_y / h_img
                if bw > a.min_x and bh > a.min_y and bw > 0 and bh > 0:
                    boxes.append((bw, bh))
    if len(boxes) <= a.num_clusters:
        raise TaskFailed("AssertionError: Must have more boxes than clusters")
    rng = random.Random(42)
    centers = rng.sample(boxes, a.num_clusters)
    for _ in range(min(a.max_steps, 1000)):
        groups = [[] for _ in centers]
        for b in boxes:
            best = max(range(len(centers)), key=lambda i: _iou_wh(b, centers[i]))
            groups[best].append(b)
        new = []
        for i, g in enumerate(groups):
            if g:
                new.append((sum(x[0] for x in g) / len(g), sum(x[1] for x in g) / len(g)))
            else:
                new.append(centers[i])
        if new == centers:
            break
        centers = new
    centers.sort(key=lambda c: c[0] * c[1])
    say("Start optimization iteration: 1")
    say("Please use following anchor sizes in YOLO config:")
    for w, h in centers:
        say(f"({w:.2f}, {h:.2f})")
    ctx.status.write("SUCCESS", "K-means finished successfully.",
                     kpi={"k-means generated anchors": str([f"({w:.2f}, {h:.2f})" for w, h in centers])})
