#!/usr/bin/env python3
"""Export a trained SSD to ONNX for jetson-inference's detectnet (tltpipe's test stand-in of pytorch-ssd's
onnx_export.py). Like the real script it puts the model and its dummy input on CUDA unconditionally, so it needs an
NVIDIA GPU."""
import argparse
import inspect
import os
import re
import shutil
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the vision package beside this script

import torch  # noqa: E402

from vision.ssd.ssd import NET_TYPES, RawSSD, create_net, load_state  # noqa: E402
from vision.utils.misc import read_labels  # noqa: E402

parser = argparse.ArgumentParser(description="Export an SSD checkpoint to ONNX")
parser.add_argument('--net', default="ssd-mobilenet",
                    help="the network: ssd-mobilenet (= mb1-ssd), mb1-ssd-lite, mb2-ssd-lite, vgg16-ssd or sq-ssd-lite")
parser.add_argument('--input', type=str, default='',
                    help="the checkpoint to export (.pth); empty picks the lowest-loss checkpoint in --model-dir")
parser.add_argument('--output', type=str, default='',
                    help="the ONNX file to write (default: <net>.onnx in --model-dir)")
parser.add_argument('--labels', type=str, default='labels.txt', help="the labels file (read from --model-dir)")
parser.add_argument('--width', type=int, default=300, help="input width of the model")
parser.add_argument('--height', type=int, default=300, help="input height of the model")
parser.add_argument('--batch-size', type=int, default=1, help="batch size of the model")
parser.add_argument('--model-dir', type=str, default='', help="directory of the checkpoints and labels")

CHECKPOINT_LOSS = re.compile(r"-Loss-(.+)\.pth$")


def best_checkpoint(model_dir):
    best_loss, best_path = float("inf"), None
    for name in os.listdir(model_dir):
        match = CHECKPOINT_LOSS.search(name)
        if not match or name.startswith("."):
            continue
        try:
            loss = float(match.group(1))
        except ValueError:
            continue
        if loss < best_loss:
            best_loss, best_path = loss, os.path.join(model_dir, name)
    return best_loss, best_path


def in_model_dir(path, model_dir):
    if model_dir and path and not os.path.isabs(path) and not os.path.exists(path):
        return os.path.join(model_dir, path)
    return path


def main():
    args = parser.parse_args()
    net_type = "mb1-ssd" if args.net == "ssd-mobilenet" else args.net
    if net_type not in NET_TYPES:
        print(f"unsupported network type: {args.net}", file=sys.stderr)
        sys.exit(1)

    model_dir = os.path.expanduser(args.model_dir) if args.model_dir else ''
    if not args.input:
        if not model_dir:
            print("either --input or --model-dir is needed", file=sys.stderr)
            sys.exit(1)
        best_loss, best_path = best_checkpoint(model_dir)
        if best_path is None:
            print(f"couldn't find a checkpoint in {model_dir}", file=sys.stderr)
            sys.exit(1)
        args.input = best_path
        print(f"found best checkpoint with loss {best_loss} ({args.input})", flush=True)
    else:
        args.input = in_model_dir(os.path.expanduser(args.input), model_dir)

    if not args.output:
        name = "ssd-mobilenet" if net_type == "mb1-ssd" else args.net
        args.output = os.path.join(model_dir or os.path.dirname(args.input), f"{name}.onnx")
    labels_path = in_model_dir(args.labels, model_dir)
    class_names = read_labels(labels_path)
    print(f"=> {len(class_names)} classes from {labels_path}", flush=True)

    print(f"=> creating network: {args.net}", flush=True)
    model = create_net(net_type, len(class_names), resolution=args.width)
    print(f"=> loading checkpoint: {args.input}", flush=True)
    load_state(model, args.input)
    model.eval()
    exported = RawSSD(model, args.width, args.height).eval()
    exported = exported.cuda()

    dummy_input = torch.randn(args.batch_size, 3, args.height, args.width).cuda()

    print(f"=> exporting model to ONNX: {args.output}", flush=True)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    options = dict(input_names=['input_0'], output_names=['scores', 'boxes'], opset_version=11,
                   do_constant_folding=True, verbose=False)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False  # the TorchScript exporter: no onnxscript needed, a fixed-shape graph
    partial = os.path.join(out_dir, f".{os.path.basename(args.output)}.part")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # newer torch calls the TorchScript exporter legacy
        torch.onnx.export(exported, (dummy_input,), partial, **options)
    os.replace(partial, args.output)

    labels_next_to_output = os.path.join(out_dir, "labels.txt")
    if not os.path.exists(labels_next_to_output):
        shutil.copyfile(labels_path, labels_next_to_output)
    print(f"exported model to {args.output}", flush=True)


if __name__ == '__main__':
    main()
