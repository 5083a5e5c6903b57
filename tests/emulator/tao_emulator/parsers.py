"""argparse definitions per subcommand (tao-contract.md sections 3 and 4)."""

from __future__ import annotations

import argparse

from . import catalog


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, default=1, help="number of GPUs")
    p.add_argument("--gpu_index", type=int, nargs="+", default=[0], help="GPU indices")
    p.add_argument("--log_file", default=None, help="append the task output to this file")
    p.add_argument("--use_amp", action="store_true", help="automatic mixed precision")
    p.add_argument("-np", "--num_processes", type=int, default=-1, help="number of processes")


def _key(p, required=False):
    p.add_argument("-k", "--key", required=required, default=None, help="the model key")


def dataset_convert(p):
    p.add_argument("-d", "--dataset_export_spec", required=True)
    p.add_argument("-o", "--output_filename", required=True)
    p.add_argument("-f", "--validation_fold", type=int, default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-r", "--results_dir", default=None)
    p.add_argument("-c", "--class_names", default=None)


def train(p, net):
    p.add_argument("-e", "--experiment_spec_file", required=True)
    p.add_argument("-r", "--results_dir", required=True)
    _key(p)
    if net in ("ssd", "dssd", "retinanet"):
        p.add_argument("-m", "--resume_model_weights", default=None)
        p.add_argument("--initial_epoch", type=int, default=1)
    elif net == "detectnet_v2":
        p.add_argument("-n", "--model_name", default="model")


def evaluate(p, net, role):
    p.add_argument("-e", "--experiment_spec", required=True)
    p.add_argument("-m", "--model", required=True)
    if role == "deploy":
        p.add_argument("-r", "--results_dir", default=None)
        p.add_argument("-i", "--image_dir", default=None)
        p.add_argument("-l", "--label_dir", default=None)
        p.add_argument("-b", "--batch_size", type=int, default=1)
        _key(p)
        return
    _key(p)
    p.add_argument("-r", "--results_dir", default=None)
    if net == "detectnet_v2":
        p.add_argument("-f", "--framework", choices=["tlt", "tensorrt"], default="tlt")
        p.add_argument("--use_training_set", action="store_true")


def inference(p, net, version, role):
    p.add_argument("-e", "--experiment_spec", required=True)
    p.add_argument("-i", "--image_dir", required=True)
    if role == "deploy":
        p.add_argument("-m", "--model", required=True)
        p.add_argument("-r", "--results_dir", required=True)
        p.add_argument("-b", "--batch_size", type=int, default=1)
        p.add_argument("-t", "--threshold", type=float, default=0.3)
        _key(p)
        return
    _key(p)
    if net != "detectnet_v2":
        p.add_argument("-m", "--model", required=True)
        p.add_argument("-t", "--threshold", type=float, default=0.3)
    if catalog.inference_uses_results_dir(version):
        p.add_argument("-r", "--results_dir", required=True)
    else:
        p.add_argument("-o", "--out_image_path", required=True)
        if net != "detectnet_v2":
            p.add_argument("-l", "--out_label_path", default=None)


def prune(p, net, version):
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-o", "--output_file", required=True)
    _key(p)
    if net is not None and net.startswith("yolo"):
        p.add_argument("-e", "--experiment_spec_path", required=True)
    elif net is None:  # TLT 2.0 tlt-prune: network-agnostic
        p.add_argument("-e", "--experiment_spec_path", default=None)
    p.add_argument("-n", "--normalizer", choices=["max", "L2"], default="max")
    p.add_argument("-eq", "--equalization_criterion",
                   choices=["union", "intersection", "arithmetic_mean", "geometric_mean"],
                   default="union")
    p.add_argument("-pg", "--pruning_granularity", type=int, default=8)
    p.add_argument("-pth", "--pruning_threshold", type=float, default=0.1)
    p.add_argument("-nf", "--min_num_filters", type=int, default=16)
    p.add_argument("-el", "--excluded_layers", nargs="*", default=[])
    p.add_argument("--results_dir", default=None)


def export(p, net):
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-o", "--output_file", default=None)
    _key(p)
    p.add_argument("-e", "--experiment_spec", required=(net != "detectnet_v2"), default=None)
    p.add_argument("--gen_ds_config", action="store_true")
    p.add_argument("--data_type", choices=["fp32", "fp16", "int8"], default="fp32")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_batch_size", type=int, default=16)
    p.add_argument("--min_batch_size", type=int, default=1)
    p.add_argument("--opt_batch_size", type=int, default=1)
    p.add_argument("--cal_image_dir", default="")
    p.add_argument("--cal_data_file", default="")
    p.add_argument("--cal_cache_file", default="./cal.bin")
    p.add_argument("--cal_json_file", default=None)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--engine_file", default=None)
    p.add_argument("--max_workspace_size", type=int, default=None)
    p.add_argument("--target_opset", type=int, default=None)
    p.add_argument("--strict_type_constraints", action="store_true")
    p.add_argument("--force_ptq", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")


def kmeans(p):
    p.add_argument("-l", "--label_folders", nargs="+", required=True)
    p.add_argument("-i", "--image_folders", nargs="+", required=True)
    p.add_argument("-x", "--size_x", type=int, required=True)
    p.add_argument("-y", "--size_y", type=int, required=True)
    p.add_argument("-n", "--num_clusters", type=int, default=9)
    p.add_argument("--max_steps", type=int, default=10000)
    p.add_argument("--min_x", type=int, default=0)
    p.add_argument("--min_y", type=int, default=0)


def calibration_tensorfile(p):
    p.add_argument("-e", "--experiment_spec_file", required=True)
    p.add_argument("-o", "--output_path", required=True)
    p.add_argument("-m", "--max_batches", type=int, default=100)
    p.add_argument("--use_validation_set", action="store_true")


def converter(p):
    p.add_argument("input_file", help="the .etlt model")
    p.add_argument("-k", dest="key", required=True, help="the model key")
    p.add_argument("-d", dest="input_dims", default=None, help="C,H,W")
    p.add_argument("-o", dest="outputs", default=None, help="comma-separated output node names")
    p.add_argument("-c", dest="cache_file", default=None, help="INT8 calibration cache")
    p.add_argument("-e", dest="engine_file_path", default="saved.engine")
    p.add_argument("-b", dest="batch_size", type=int, default=8)
    p.add_argument("-m", dest="max_batch_size", type=int, default=16)
    p.add_argument("-t", dest="data_type", choices=["fp32", "fp16", "int8"], default="fp32")
    p.add_argument("-w", dest="max_workspace_size", type=int, default=1 << 30)
    p.add_argument("-i", dest="input_order", choices=["nchw", "nhwc", "nc"], default="nchw")
    p.add_argument("-p", dest="profiles", action="append", default=[],
                   help="input_name,MINxCxHxW,OPTxCxHxW,MAXxCxHxW")
    p.add_argument("-s", dest="strict", action="store_true")
    p.add_argument("-u", dest="dla_core", type=int, default=None)


def gen_trt_engine(p):
    p.add_argument("-m", "--model_path", required=True)
    p.add_argument("-e", "--experiment_spec", required=True)
    p.add_argument("-r", "--results_dir", required=True)
    _key(p)
    p.add_argument("--engine_file", required=True)
    p.add_argument("--data_type", choices=["fp32", "fp16", "int8"], default="fp32")
    p.add_argument("--cal_image_dir", default="")
    p.add_argument("--cal_data_file", default="")
    p.add_argument("--cal_cache_file", default="")
    p.add_argument("--cal_json_file", default="")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--min_batch_size", type=int, default=1)
    p.add_argument("--opt_batch_size", type=int, default=1)
    p.add_argument("--max_batch_size", type=int, default=1)
    p.add_argument("--max_workspace_size", type=int, default=2)
    p.add_argument("-v", "--verbose", action="store_true")


def build(prog: str, net: str | None, sub: str, version: str, role: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=f"TAO Toolkit {sub} (tltpipe emulator)")
    if sub == "converter":
        converter(p)
        return p
    if sub == "dataset_convert":
        dataset_convert(p)
    elif sub == "train":
        train(p, net)
    elif sub == "evaluate":
        evaluate(p, net, role)
    elif sub == "inference":
        inference(p, net, version, role)
    elif sub == "prune":
        prune(p, net, version)
    elif sub == "export":
        export(p, net)
    elif sub == "kmeans":
        kmeans(p)
    elif sub == "calibration_tensorfile":
        calibration_tensorfile(p)
    elif sub == "gen_trt_engine":
        gen_trt_engine(p)
    else:  # pragma: no cover - catalog and parsers disagree
        raise ValueError(sub)
    _common(p)
    return p
