"""The task flags, as NVIDIA's own code defines them.

TF1 images: the TAO 5.0 TF1 backend's task parsers (tao-contract.md section 7), written here as a
table of options, plus the task entrypoint's global flags. TAO 3.x / 4.0 and TLT 2.0 take the same
flags except for the version facts in `_tf1_table` (TAO 3.x and TLT 2.0 inference write with
-o/-l, TLT 2.0's network-less tlt-prune). The engine builder (`converter`, `tlt-converter`) keeps
the flags of tao-contract.md section 4.

Deploy images: TAO Deploy's own parsers, read from the nvidia-tao-deploy wheel (nvidia.py), with
the Deploy entrypoint's --gpu_index/--log_file and nothing else.

Every option is one dict in the shape of tests/reference/deploy_cli.actions(): option_strings,
dest, type, default, required, nargs, choices, action.
"""

from __future__ import annotations

import argparse

from . import catalog, nvidia

_TYPES = {"int": int, "float": float, "str": str, None: None}


def opt(*names: str, type: str | None = "str", default=None, required: bool = False, nargs=None,
        choices=None, flag: bool = False, dest: str | None = None) -> dict:
    """One option; `flag` is a store_true switch (default False)."""
    long_names = [n for n in names if n.startswith("--")]
    name = dest or (long_names[0] if long_names else names[0]).lstrip("-").replace("-", "_")
    if flag:
        return {"option_strings": list(names), "dest": name, "type": None, "default": False,
                "required": False, "nargs": 0, "choices": None, "action": "store_true"}
    return {"option_strings": list(names), "dest": name, "type": type, "default": default,
            "required": required, "nargs": nargs, "choices": list(choices) if choices else None,
            "action": "store"}


# ---------------------------------------------------------------------------------------------
# TF1 (TAO 5.0 sources; tao-contract.md section 7)

# The TF1 task entrypoint: every task takes these (the hidden multi-node switches included).
TF1_GLOBALS = (
    opt("--num_processes", "-np", type="int", default=-1),
    opt("--gpus", type="int", default=1),
    opt("--gpu_index", type="int", nargs="+"),
    opt("--use_amp", flag=True),
    opt("--log_file"),
    opt("--mpirun-arg"),
    opt("--multi-node", flag=True),
    opt("--launch_cuda_blocking", flag=True),
)

_KEY = opt("-k", "--key", default="")
_VERBOSE = opt("-v", "--verbose", flag=True)


def _dataset_convert(class_names: bool) -> list[dict]:
    options = [opt("-d", "--dataset_export_spec", required=True),
               opt("-o", "--output_filename", required=True),
               opt("-f", "--validation_fold", type="int"),
               _VERBOSE,
               opt("-r", "--results_dir")]
    if class_names:
        options.append(opt("-c", "--class_names_file"))
    return options


def _evaluate(spec_required: bool, results_default=None) -> list[dict]:
    return [opt("-m", "--model_path", required=True), _KEY,
            opt("-e", "--experiment_spec", required=spec_required),
            opt("-r", "--results_dir", default=results_default),
            opt("-i", "--image_dir"), opt("-l", "--label_dir"),
            opt("-b", "--batch_size", type="int", default=1)]


def _inference(results_default=None) -> list[dict]:
    return [opt("-m", "--model_path", required=True), opt("-i", "--image_dir", required=True), _KEY,
            opt("-e", "--experiment_spec", required=True),
            opt("-t", "--threshold", type="float", default=0.3),
            opt("-r", "--results_dir", default=results_default),
            opt("-b", "--batch_size", type="int", default=1)]


_PRUNE_OPTIONS = [
    _KEY,
    opt("-n", "--normalizer", default="max"),
    opt("-eq", "--equalization_criterion", default="union"),
    opt("-pg", "--pruning_granularity", type="int", default=8),
    opt("-pth", "--pruning_threshold", type="float", default=0.1),
    opt("-nf", "--min_num_filters", type="int", default=16),
    opt("-el", "--excluded_layers", nargs="*", default=[]),
]


def _prune(spec: str) -> list[dict]:
    """spec: "" (none), "required" (YOLO) or "optional" (TLT 2.0's tlt-prune)."""
    head = [opt("-m", "--model", required=True), opt("-o", "--output_file", required=True)]
    if spec:
        head.append(opt("-e", "--experiment_spec_path", required=spec == "required"))
    return head + [opt("--results_dir")] + _PRUNE_OPTIONS + [_VERBOSE]


_EXPORT = [
    opt("-m", "--model", required=True), _KEY,
    opt("-o", "--output_file"),
    opt("--force_ptq", flag=True),
    opt("--cal_data_file", default=""),
    opt("--cal_image_dir", default=""),
    opt("--cal_json_file", default=""),
    opt("--data_type", default="fp32", choices=("fp32", "fp16", "int8")),
    opt("-s", "--strict_type_constraints", flag=True),
    opt("--gen_ds_config", flag=True),
    opt("--cal_cache_file", default="./cal.bin"),
    opt("--batches", type="int", default=10),
    opt("--max_workspace_size", type="int", default=2 * (1 << 30)),  # bytes, unlike Deploy's GB
    opt("--max_batch_size", type="int", default=1),
    opt("--batch_size", type="int", default=16),
    opt("--min_batch_size", type="int", default=1),
    opt("--opt_batch_size", type="int", default=1),
    opt("--onnx_route", default="keras2onnx"),
    opt("-e", "--experiment_spec"),
    opt("--engine_file"),
    opt("--static_batch_size", type="int", default=-1),
    opt("--target_opset", type="int", default=12),
    opt("--results_dir"),
    _VERBOSE,
]

_KMEANS = [
    opt("-l", "--label_folders", required=True, nargs="+"),
    opt("-i", "--image_folders", required=True, nargs="+"),
    opt("-x", "--size_x", type="int", required=True),
    opt("-y", "--size_y", type="int", required=True),
    opt("-n", "--num_clusters", type="int", default=9),
    opt("--max_steps", type="int", default=10000),
    opt("--min_x", type="int", default=0),
    opt("--min_y", type="int", default=0),
    opt("--results_dir"),
]

_SPEC_RESULTS_KEY = [opt("-e", "--experiment_spec_file", required=True),
                     opt("-r", "--results_dir", required=True), _KEY]

# (network family, task) -> options, as the TAO 5.0 TF1 backend defines them.
TF1 = {
    ("ssd", "dataset_convert"): _dataset_convert(class_names=True),
    ("ssd", "train"): _SPEC_RESULTS_KEY + [
        opt("-m", "--resume_model_weights"),
        opt("--initial_epoch", type="int", default=1),
        opt("--arch", type=None, choices=(None, "ssd", "dssd")),
        opt("--use_multiprocessing", flag=True)],
    ("ssd", "evaluate"): _evaluate(spec_required=True),
    ("ssd", "inference"): _inference(),
    ("ssd", "prune"): _prune(""),
    ("ssd", "export"): _EXPORT,
    ("retinanet", "dataset_convert"): _dataset_convert(class_names=True),
    ("retinanet", "train"): _SPEC_RESULTS_KEY + [opt("--root_path"),
                                                 opt("--initial_epoch", type="int", default=0)],
    ("retinanet", "evaluate"): _evaluate(spec_required=False, results_default="/tmp"),
    ("retinanet", "inference"): _inference(results_default="/tmp"),
    ("retinanet", "prune"): _prune(""),
    ("retinanet", "export"): _EXPORT,
    ("yolo_v3", "dataset_convert"): _dataset_convert(class_names=False),
    ("yolo_v3", "train"): _SPEC_RESULTS_KEY,
    ("yolo_v3", "evaluate"): _evaluate(spec_required=False),
    ("yolo_v3", "inference"): _inference(),
    ("yolo_v3", "kmeans"): _KMEANS,
    ("yolo_v3", "prune"): _prune("required"),
    ("yolo_v3", "export"): _EXPORT,
    ("yolo_v4", "dataset_convert"): _dataset_convert(class_names=False),
    ("yolo_v4", "train"): _SPEC_RESULTS_KEY,
    ("yolo_v4", "evaluate"): _evaluate(spec_required=True),
    ("yolo_v4", "inference"): _inference(),
    ("yolo_v4", "kmeans"): _KMEANS,
    ("yolo_v4", "prune"): _prune("required"),
    ("yolo_v4", "export"): _EXPORT,
    ("detectnet_v2", "calibration_tensorfile"): [
        opt("-e", "--experiment_spec_file"), opt("-o", "--output_path"),
        opt("-m", "--max_batches", type="int", default=-1), _VERBOSE,
        opt("--use_validation_set", flag=True)],
    ("detectnet_v2", "dataset_convert"): _dataset_convert(class_names=False),
    ("detectnet_v2", "evaluate"): [
        opt("-e", "--experiment_spec", required=True), opt("-m", "--model_path", required=True),
        _VERBOSE, opt("-r", "--results_dir"), opt("--use_training_set", flag=True), _KEY,
        opt("-f", "--framework", default="tlt", choices=("tlt", "tensorrt")),
        opt("-i", "--image_dir"), opt("-l", "--label_dir"),
        opt("-b", "--batch_size", type="int", default=1)],
    ("detectnet_v2", "export"): _EXPORT,
    ("detectnet_v2", "inference"): [
        opt("-e", "--experiment_spec", required=True), opt("-i", "--image_dir", required=True), _KEY,
        opt("-r", "--results_dir", required=True), opt("-b", "--batch_size", type="int"),
        opt("-m", "--model_path"), opt("-v", "--verbosity", flag=True)],
    ("detectnet_v2", "prune"): _prune(""),
    ("detectnet_v2", "train"): [
        opt("-e", "--experiment_spec_file"), opt("-r", "--results_dir"),
        opt("-n", "--model_name", default="model"), _VERBOSE, _KEY,
        opt("--enable_determinism", flag=True)],
}


def _tao3_inference(net: str) -> list[dict]:
    """TAO 3.x (and TLT 2.0) inference wrote images and labels with -o/-l instead of -r."""
    options = [o for o in TF1[(catalog.family(net), "inference")] if o["dest"] != "results_dir"]
    options.append(opt("-o", "--out_image_path", required=True))
    if net != "detectnet_v2":
        options.append(opt("-l", "--out_label_path"))
    return options


def tf1_options(net: str | None, sub: str, version: str) -> list[dict]:
    """A TF1 task's own options (without the entrypoint's globals) in one toolkit version."""
    if net is None:  # TLT 2.0's network-less tlt-prune (optional spec) and tlt-dataset-convert
        return _prune("optional") if sub == "prune" else TF1[("detectnet_v2", sub)]
    if sub == "inference" and not catalog.inference_uses_results_dir(version):
        return _tao3_inference(net)
    return TF1[(catalog.family(net), sub)]


# ---------------------------------------------------------------------------------------------
# the engine builder (tao-contract.md section 4; no public source)


def converter(p: argparse.ArgumentParser) -> None:
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


# ---------------------------------------------------------------------------------------------
# building parsers


def add_options(p: argparse.ArgumentParser, options) -> argparse.ArgumentParser:
    for o in options:
        kw = {"dest": o["dest"], "default": o["default"]}
        if o["action"] == "store_true":
            kw["action"] = "store_true"
        else:
            kw.update(type=_TYPES[o["type"]], required=o["required"], nargs=o["nargs"],
                      choices=o["choices"])
        p.add_argument(*o["option_strings"], **kw)
    return p


DEPLOY_GLOBALS = ("gpu_index", "log_file")


def deploy_options(net: str, sub: str, table: dict | None = None) -> list[dict]:
    """TAO Deploy's options of one task, entrypoint flags included (from `table`, else nvidia.py)."""
    return (table or nvidia.deploy_table())[net][sub]


def global_options(role: str, table: dict | None = None) -> list[dict]:
    """The entrypoint's own flags, taken before the task name too."""
    if role == "deploy":
        first = next(iter((table or nvidia.deploy_table()).values()))
        return [o for o in first[catalog.DEPLOY_SUBCOMMANDS[0]] if o["dest"] in DEPLOY_GLOBALS]
    return list(TF1_GLOBALS)


def build(prog: str, net: str | None, sub: str, version: str, role: str,
          table: dict | None = None) -> argparse.ArgumentParser:
    """The parser of one task as its entrypoint builds it: the task's options and the global flags.

    Deploy tasks read TAO Deploy's parsers from `table` ({net: {task: options}}, what
    tests/reference/deploy_cli.actions() returns), else from the image's generated table, else
    (on the host) from the nvidia-tao-deploy wheel through tests/reference.
    """
    p = argparse.ArgumentParser(prog=prog, description=f"TAO Toolkit {sub} (tltpipe emulator)")
    if sub == "converter":
        converter(p)
        return p
    if role == "deploy":
        return add_options(p, deploy_options(net, sub, table))
    return add_options(add_options(p, TF1_GLOBALS), tf1_options(net, sub, version))
