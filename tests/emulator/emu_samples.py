"""Sample inputs for exercising the emulator: tiny KITTI datasets and valid spec files.

Used by tests/integration/test_emulator.py; handy for any test that drives the emulator images.
Spec texts take container paths; format them with str.format(**paths).
"""

from __future__ import annotations

import json
import os
import struct
import zlib


def write_png(path: str, width: int, height: int, shade: int = 128) -> None:
    """A valid grayscale-free RGB PNG of the given size (flat colour)."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))

    row = b"\x00" + bytes([shade % 256, (shade * 3) % 256, (shade * 7) % 256]) * width
    raw = row * height
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 1))
           + chunk(b"IEND", b""))
    with open(path, "wb") as fh:
        fh.write(png)


def write_kitti_dataset(root: str, n_images: int = 20, width: int = 320, height: int = 320,
                        classes=("car", "person")) -> None:
    """root/images/*.png and root/labels/*.txt with one or two objects per image."""
    img_dir = os.path.join(root, "images")
    lbl_dir = os.path.join(root, "labels")
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(lbl_dir, exist_ok=True)
    for i in range(n_images):
        name = f"{i:06d}"
        write_png(os.path.join(img_dir, name + ".png"), width, height, shade=i * 11)
        lines = []
        for j in range(1 + i % 2):
            cls = classes[(i + j) % len(classes)]
            x1, y1 = 10 + 7 * j + i % 50, 20 + 5 * j + (3 * i) % 40
            x2, y2 = x1 + 40 + (i * 13) % 60, y1 + 50 + (i * 7) % 70
            lines.append(f"{cls} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} "
                         "0.00 0.00 0.00 0.00 0.00 0.00 0.00")
        with open(os.path.join(lbl_dir, name + ".txt"), "w") as fh:
            fh.write("\n".join(lines) + "\n")


def write_coco_dataset(root: str, n_images: int = 4, width: int = 64, height: int = 48,
                       classes=("car", "person"), write_image=None, ext: str = ".png") -> None:
    """root/images/<i>.<ext> and root/annotations.json (COCO: category ids from 1, one or two boxes per
    image), plus root/classmap.txt (the class names, one a line) for inference. write_image(path, w,
    h, i) writes an image (default: write_png)."""
    img_dir = os.path.join(root, "images")
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(n_images):
        name = f"{i:06d}{ext}"
        path = os.path.join(img_dir, name)
        if write_image is None:
            write_png(path, width, height, shade=i * 11)
        else:
            write_image(path, width, height, i)
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
        for j in range(1 + i % 2):
            box = [2 + 3 * j + i % 5, 3 + 2 * j, width // 3, height // 3]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": 1 + (i + j) % len(classes), "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)]}
    with open(os.path.join(root, "annotations.json"), "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    with open(os.path.join(root, "classmap.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(classes) + "\n")


def detr_spec(data: str, results: str, net: str = "rtdetr", epochs: int = 2, num_classes: int = 3,
              key: str | None = "tlt_encode") -> str:
    """An RT-DETR / DINO experiment spec over write_coco_dataset(data): train, val and test on the
    same COCO file, inference on its images. DINO's val_data_sources is a list, RT-DETR's a mapping."""
    images, annotations = f"{data}/images", f"{data}/annotations.json"
    item = f"    - image_dir: {images}\n      json_file: {annotations}\n"
    mapping = f"    image_dir: {images}\n    json_file: {annotations}\n"
    key_line = f"encryption_key: {key}\n" if key else ""
    return (f"results_dir: {results}\n{key_line}"
            "model:\n  backbone: resnet_50\n"
            f"dataset:\n  num_classes: {num_classes}\n  batch_size: 2\n  workers: 1\n"
            f"  train_data_sources:\n{item}"
            f"  val_data_sources:\n{item if net == 'dino' else mapping}"
            f"  test_data_sources:\n{mapping}"
            f"  infer_data_sources:\n    image_dir: [{images}]\n    classmap: {data}/classmap.txt\n"
            f"train:\n  num_epochs: {epochs}\n  checkpoint_interval: 1\n  validation_interval: 1\n")


def write_pretrained(path: str) -> None:
    """A stand-in for an NGC pretrained backbone: any HDF5-signature file is accepted."""
    with open(path, "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 8 + b"pretrained backbone weights")


KITTI_CONVERT_SPEC = """\
kitti_config {{
  root_directory_path: "{data}"
  image_dir_name: "images"
  label_dir_name: "labels"
  image_extension: ".png"
  partition_mode: "random"
  num_partitions: 2
  val_split: {val_split}
  num_shards: {num_shards}
}}
image_directory_path: "{data}"
"""

_TRAINING = """\
training_config {{
  batch_size_per_gpu: 4
  num_epochs: {epochs}
  enable_qat: false
  learning_rate {{
    soft_start_annealing_schedule {{
      min_learning_rate: 5e-5
      max_learning_rate: 2e-2
      soft_start: 0.15
      annealing: 0.8
    }}
  }}
  regularizer {{
    type: L1
    weight: 3e-5
  }}
  checkpoint_interval: {ckpt}
  {load_model}
}}
eval_config {{
  {val_period}average_precision_mode: SAMPLE
  batch_size: 4
  matching_iou_threshold: 0.5
}}
nms_config {{
  confidence_threshold: 0.01
  clustering_iou_threshold: 0.6
  top_k: 200
}}
"""

_DATASET = """\
dataset_config {{
  data_sources {{
    tfrecords_path: "{tfrecords}*"
    image_directory_path: "{data}"
  }}
  target_class_mapping {{
    key: "car"
    value: "car"
  }}
  target_class_mapping {{
    key: "person"
    value: "person"
  }}
VALIDATION}}
"""

# SSD, DSSD and RetinaNet read TFRecords for training; validation comes only from
# validation_data_sources (SSD keeps the ones with both an image and a label directory).
_SSD_DATASET = _DATASET.replace("VALIDATION", """\
  validation_data_sources {{
    label_directory_path: "{data}/labels"
    image_directory_path: "{data}/images"
  }}
""")

# YOLO: TFRecords need image_extension; without validation_data_sources the fold validation_fold
# of the records is the validation set.
_YOLO_DATASET = _DATASET.replace("VALIDATION", """\
  image_extension: "png"
  validation_fold: 0
""")

SSD_SPEC = """\
random_seed: 42
ssd_config {{
  aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"
  scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"
  two_boxes_for_ar1: true
  clip_boxes: false
  variances: "[0.1, 0.1, 0.2, 0.2]"
  arch: "resnet"
  nlayers: 18
  freeze_bn: false
  freeze_blocks: 0
}}
""" + _TRAINING + """\
augmentation_config {{
  output_width: 320
  output_height: 320
  output_channel: 3
  random_crop_min_scale: 0.3
  random_crop_max_scale: 1.0
  zoom_out_min_scale: 1.0
  zoom_out_max_scale: 4.0
  brightness: 32
  contrast: 0.5
  saturation: 0.5
  hue: 18
  random_flip: 0.5
}}
""" + _SSD_DATASET

YOLO_V4_SPEC = """\
random_seed: 42
yolov4_config {{
  big_anchor_shape: "[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]"
  mid_anchor_shape: "[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]"
  small_anchor_shape: "[(15.60, 13.88), (30.25, 20.25), (20.67, 49.63)]"
  box_matching_iou: 0.25
  matching_neutral_box_iou: 0.5
  arch: "{arch}"
  nlayers: {nlayers}
  arch_conv_blocks: 2
  loss_loc_weight: 1.0
  loss_neg_obj_weights: 1.0
  loss_class_weights: 1.0
  label_smoothing: 0.0
  big_grid_xy_extend: 0.05
  mid_grid_xy_extend: 0.1
  small_grid_xy_extend: 0.2
  freeze_bn: false
}}
""" + _TRAINING + """\
augmentation_config {{
  hue: 0.1
  saturation: 1.5
  exposure: 1.5
  vertical_flip: 0
  horizontal_flip: 0.5
  jitter: 0.3
  output_width: 320
  output_height: 320
  output_channel: 3
  randomize_input_shape_period: 0
  mosaic_prob: 0.5
  mosaic_min_ratio: 0.2
}}
""" + _YOLO_DATASET

DETECTNET_V2_SPEC = """\
random_seed: 42
dataset_config {{
  data_sources {{
    tfrecords_path: "{tfrecords}*"
    image_directory_path: "{data}"
  }}
  image_extension: "png"
  target_class_mapping {{ key: "car" value: "car" }}
  target_class_mapping {{ key: "person" value: "person" }}
  validation_fold: 0
}}
augmentation_config {{
  preprocessing {{
    output_image_width: 320
    output_image_height: 320
    output_image_channel: 3
    min_bbox_width: 1.0
    min_bbox_height: 1.0
  }}
  spatial_augmentation {{ hflip_probability: 0.5 zoom_min: 1.0 zoom_max: 1.0 }}
  color_augmentation {{ hue_rotation_max: 25.0 saturation_shift_max: 0.2 contrast_center: 0.5 }}
}}
postprocessing_config {{
  target_class_config {{
    key: "car"
    value {{ clustering_config {{ clustering_algorithm: DBSCAN coverage_threshold: 0.005
      dbscan_eps: 0.15 dbscan_min_samples: 1 minimum_bounding_box_height: 20 }} }}
  }}
  target_class_config {{
    key: "person"
    value {{ clustering_config {{ clustering_algorithm: DBSCAN coverage_threshold: 0.005
      dbscan_eps: 0.15 dbscan_min_samples: 1 minimum_bounding_box_height: 20 }} }}
  }}
}}
model_config {{
  {pretrained}
  num_layers: 18
  arch: "resnet"
  {load_graph}
  use_batch_norm: true
  objective_set {{ bbox {{ scale: 35.0 offset: 0.5 }} cov {{ }} }}
  training_precision {{ backend_floatx: FLOAT32 }}
}}
evaluation_config {{
  validation_period_during_training: {val_period}
  first_validation_epoch: 1
  minimum_detection_ground_truth_overlap {{ key: "car" value: 0.7 }}
  minimum_detection_ground_truth_overlap {{ key: "person" value: 0.5 }}
  evaluation_box_config {{ key: "car" value {{ minimum_height: 10 maximum_height: 9999
    minimum_width: 10 maximum_width: 9999 }} }}
  evaluation_box_config {{ key: "person" value {{ minimum_height: 10 maximum_height: 9999
    minimum_width: 10 maximum_width: 9999 }} }}
  average_precision_mode: INTEGRATE
}}
cost_function_config {{
  target_classes {{ name: "car" class_weight: 1.0 coverage_foreground_weight: 0.05
    objectives {{ name: "cov" initial_weight: 1.0 weight_target: 1.0 }}
    objectives {{ name: "bbox" initial_weight: 10.0 weight_target: 10.0 }} }}
  target_classes {{ name: "person" class_weight: 1.0 coverage_foreground_weight: 0.05
    objectives {{ name: "cov" initial_weight: 1.0 weight_target: 1.0 }}
    objectives {{ name: "bbox" initial_weight: 10.0 weight_target: 10.0 }} }}
  enable_autoweighting: true
  max_objective_weight: 0.9999
  min_objective_weight: 0.0001
}}
training_config {{
  batch_size_per_gpu: 4
  num_epochs: {epochs}
  learning_rate {{ soft_start_annealing_schedule {{ min_learning_rate: 5e-06
    max_learning_rate: 5e-04 soft_start: 0.1 annealing: 0.7 }} }}
  regularizer {{ type: L1 weight: 3e-09 }}
  optimizer {{ adam {{ epsilon: 9.9e-09 beta1: 0.9 beta2: 0.999 }} }}
  cost_scaling {{ enabled: false initial_exponent: 20.0 increment: 0.005 decrement: 1.0 }}
  checkpoint_interval: {ckpt}
}}
bbox_rasterizer_config {{
  target_class_config {{ key: "car" value {{ cov_center_x: 0.5 cov_center_y: 0.5
    cov_radius_x: 0.4 cov_radius_y: 0.4 bbox_min_radius: 1.0 }} }}
  target_class_config {{ key: "person" value {{ cov_center_x: 0.5 cov_center_y: 0.5
    cov_radius_x: 0.4 cov_radius_y: 0.4 bbox_min_radius: 1.0 }} }}
  deadzone_radius: 0.4
}}
"""

DETECTNET_V2_INFERENCE_SPEC = """\
inferencer_config {{
  target_classes: "car"
  target_classes: "person"
  image_width: 320
  image_height: 320
  image_channels: 3
  batch_size: 4
  gpu_index: 0
  tlt_config {{ model: "{model}" }}
}}
bbox_handler_config {{
  kitti_dump: true
  disable_overlay: false
  overlay_linewidth: 2
  classwise_bbox_handler_config {{
    key: "car"
    value {{ confidence_model: "aggregate_cov" output_map: "car"
      bbox_color {{ R: 0 G: 255 B: 0 }}
      clustering_config {{ coverage_threshold: 0.005 dbscan_eps: 0.3 dbscan_min_samples: 1
        minimum_bounding_box_height: 4 }} }}
  }}
  classwise_bbox_handler_config {{
    key: "person"
    value {{ confidence_model: "aggregate_cov" output_map: "person"
      bbox_color {{ R: 255 G: 0 B: 0 }}
      clustering_config {{ coverage_threshold: 0.005 dbscan_eps: 0.3 dbscan_min_samples: 1
        minimum_bounding_box_height: 4 }} }}
  }}
}}
"""


def _val_period(val_period: int | None) -> str:
    return "" if val_period is None else f"validation_period_during_training: {val_period}\n  "


def ssd_spec(tfrecords: str, data: str, epochs: int = 4, ckpt: int = 1, val_period: int = 2,
             load_model: str = "") -> str:
    return SSD_SPEC.format(tfrecords=tfrecords, data=data, epochs=epochs, ckpt=ckpt,
                           val_period=_val_period(val_period), load_model=load_model)


def yolo_v4_spec(tfrecords: str, data: str, epochs: int = 4, ckpt: int = 2, load_model: str = "",
                 arch: str = "resnet", nlayers: int = 18) -> str:
    """YOLO validates at every checkpoint_interval (its eval_config has no validation period)."""
    return YOLO_V4_SPEC.format(tfrecords=tfrecords, data=data, epochs=epochs, ckpt=ckpt,
                               val_period=_val_period(None), load_model=load_model, arch=arch,
                               nlayers=nlayers)


def detectnet_v2_spec(tfrecords: str, data: str, epochs: int = 4, ckpt: int = 2,
                      val_period: int = 2, pretrained: str = "", load_graph: bool = False) -> str:
    return DETECTNET_V2_SPEC.format(
        tfrecords=tfrecords, data=data, epochs=epochs, ckpt=ckpt, val_period=val_period,
        pretrained=f'pretrained_model_file: "{pretrained}"' if pretrained else "",
        load_graph="load_graph: true" if load_graph else "")


def kitti_convert_spec(data: str, val_split: float = 20, num_shards: int = 2) -> str:
    return KITTI_CONVERT_SPEC.format(data=data, val_split=val_split, num_shards=num_shards)


def dssd_spec(tfrecords: str, data: str, **kw) -> str:
    text = ssd_spec(tfrecords, data, **kw)
    return text.replace("ssd_config {", "dssd_config {\n  pred_num_channels: 512", 1)


RETINANET_CONFIG = """\
retinanet_config {
  aspect_ratios_global: "[1.0, 2.0, 0.5]"
  scales: "[0.045, 0.09, 0.2, 0.4, 0.55, 0.7]"
  two_boxes_for_ar1: false
  clip_boxes: false
  loss_loc_weight: 0.8
  focal_loss_gamma: 2.0
  focal_loss_alpha: 0.25
  variances: "[0.1, 0.1, 0.2, 0.2]"
  arch: "resnet"
  nlayers: 18
  n_kernels: 1
  n_anchor_levels: 1
  feature_size: 256
  freeze_bn: false
  freeze_blocks: 0
}
"""


def retinanet_spec(tfrecords: str, data: str, **kw) -> str:
    text = ssd_spec(tfrecords, data, **kw)
    start = text.index("ssd_config {")
    end = text.index("\n}\n", start) + 3
    return text[:start] + RETINANET_CONFIG + text[end:]


def yolo_v3_spec(tfrecords: str, data: str, **kw) -> str:
    text = yolo_v4_spec(tfrecords, data, **kw).replace("yolov4_config {", "yolov3_config {", 1)
    for line in ("  box_matching_iou: 0.25\n", "  label_smoothing: 0.0\n",
                 "  big_grid_xy_extend: 0.05\n", "  mid_grid_xy_extend: 0.1\n",
                 "  small_grid_xy_extend: 0.2\n"):
        text = text.replace(line, "")
    return text.replace("  mosaic_prob: 0.5\n  mosaic_min_ratio: 0.2\n", "")


def yolo_v4_tiny_spec(tfrecords: str, data: str, **kw) -> str:
    """cspdarknet_tiny refuses small_anchor_shape and a small_grid_xy_extend."""
    kw.setdefault("arch", "cspdarknet_tiny")
    kw.setdefault("nlayers", 0)
    text = yolo_v4_spec(tfrecords, data, **kw)
    for field in ("  small_anchor_shape", "  small_grid_xy_extend"):
        start = text.index(field)
        text = text[:start] + text[text.index("\n", start) + 1:]
    return text


TLT2_AUGMENTATION = """\
augmentation_config {
  preprocessing {
    output_image_width: 320
    output_image_height: 320
    output_image_channel: 3
    crop_right: 320
    crop_bottom: 320
    min_bbox_width: 1.0
    min_bbox_height: 1.0
  }
  spatial_augmentation { hflip_probability: 0.5 vflip_probability: 0.0 zoom_min: 1.0 zoom_max: 1.0
    translate_max_x: 8.0 translate_max_y: 8.0 }
  color_augmentation { hue_rotation_max: 25.0 saturation_shift_max: 0.2 contrast_scale_max: 0.1
    contrast_center: 0.5 }
}
"""


TLT2_DATASET = """\
dataset_config {
  data_sources {
    tfrecords_path: "TFRECORDS*"
    image_directory_path: "DATA"
  }
  image_extension: "png"
  target_class_mapping { key: "car" value: "car" }
  target_class_mapping { key: "person" value: "person" }
  validation_fold: 0
}
"""


def _block(text: str, head: str) -> tuple[int, int]:
    start = text.index(head)
    return start, text.index("\n}\n", start) + 3


def tlt2_spec(text: str, val_period: int = 2) -> str:
    """A TAO sample of SSD/DSSD/RetinaNet/YOLOv3 in TLT 2.0's layout: DetectNet_v2's dataset and
    augmentation messages, yolo_config instead of yolov3_config (no force_relu), and an
    eval_config with a validation period (YOLOv3 had one in TLT 2.0)."""
    start, end = _block(text, "dataset_config {")
    source = text[start:end]
    tfrecords = source.split('tfrecords_path: "', 1)[1].split("*", 1)[0]
    data = source.split('image_directory_path: "', 1)[1].split('"', 1)[0]
    text = text[:start] + TLT2_DATASET.replace("TFRECORDS", tfrecords).replace("DATA", data) + text[end:]
    start, end = _block(text, "augmentation_config {")
    text = text[:start] + TLT2_AUGMENTATION + text[end:]
    if "validation_period_during_training" not in text:
        text = text.replace("eval_config {\n", f"eval_config {{\n  validation_period_during_training: {val_period}\n", 1)
    return text.replace("yolov3_config {", "yolo_config {", 1).replace("  force_relu: false\n", "")
