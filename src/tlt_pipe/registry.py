"""The lists everything else derives from, importable without loading the core.

The command line needs them for its choices before it knows which command runs, so they live here
as plain data; the modules that implement them (networks/, datasets/formats.py, the stages) are
checked against these lists by the unit tests.
"""

from __future__ import annotations

NETWORKS = ("ssd", "dssd", "retinanet", "yolo_v3", "yolo_v4", "yolo_v4_tiny", "detectnet_v2", "ssd_mobilenet", "rtdetr",
            "dino")
DATASET_FORMATS = ("crpd", "ccpd", "yolo", "voc", "openalpr", "kitti")
DEFAULT_TOOLKIT = "5.0"
# Every stage of every network, in run order: a TAO network runs the common chain plus its extras;
# ssd_mobilenet (pytorch-ssd) runs prepare, train, evaluate, export and detectnet; rtdetr and dino (TAO's
# PyTorch image) prepare, train, evaluate, export, engine, evaluate_engine, inference and inference_engine.
STAGE_NAMES = ("prepare", "tfrecords", "tfrecords_val", "anchors", "train", "evaluate", "prune", "retrain",
               "evaluate_retrain", "calibration_tensorfile", "export", "engine", "evaluate_engine", "inference",
               "inference_engine", "deepstream", "detectnet")
# The stages that record an mAP (validation, evaluation): what `tltpipe tune` can maximize (tune.to).
SCORED_STAGES = ("train", "evaluate", "retrain", "evaluate_retrain", "evaluate_engine")
RUNNERS = ("docker", "local", "slurm")  # runner.kind: where each stage's command runs
DEFAULT_RUNS = "runs"  # run directories default to runs/<name>
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a config's name: a folder name, plain in YAML
