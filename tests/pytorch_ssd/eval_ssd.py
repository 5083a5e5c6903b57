#!/usr/bin/env python3
"""VOC AP of a trained SSD on a dataset's test image set (tltpipe's test stand-in of pytorch-ssd's eval_ssd.py)."""
import argparse
import logging
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the vision package beside this script

from vision.datasets.voc_dataset import VOCDataset  # noqa: E402
from vision.ssd.ssd import NET_TYPES, Predictor, create_net, evaluate, load_state  # noqa: E402
from vision.utils.misc import limit_threads, pick_device, read_labels, str2bool  # noqa: E402

parser = argparse.ArgumentParser(description="SSD Evaluation on VOC Dataset.")
parser.add_argument('--net', default="vgg16-ssd",
                    help="the network: mb1-ssd, mb1-ssd-lite, mb2-ssd-lite, vgg16-ssd or sq-ssd-lite")
parser.add_argument("--trained_model", type=str, help="the checkpoint (.pth) to evaluate")
parser.add_argument("--dataset_type", default="voc", type=str, choices=['voc', 'open_images'],
                    help="the dataset layout: voc or open_images")
parser.add_argument("--dataset", type=str, help="the root directory of the dataset")
parser.add_argument("--label_file", type=str, help="the labels file the model was trained with (BACKGROUND first)")
parser.add_argument("--use_cuda", type=str2bool, default=True, help="use CUDA when it is there")
parser.add_argument("--use_2007_metric", type=str2bool, default=True,
                    help="11-point AP (VOC2007) rather than the area under the precision/recall curve")
parser.add_argument("--nms_method", type=str, default="hard", help="hard or soft non-maximum suppression")
parser.add_argument("--iou_threshold", type=float, default=0.5, help="IoU a detection needs to match an object")
parser.add_argument("--eval_dir", default="eval_results", type=str, help="where the detections are written")
parser.add_argument('--mb2_width_mult', default=1.0, type=float, help="width multiplier of MobileNetV2")
parser.add_argument('--resolution', type=int, default=300, help="the input resolution of the network, in pixels")


def main():
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='%(asctime)s - %(message)s')
    limit_threads()
    device = pick_device(args.use_cuda)

    if args.net not in NET_TYPES:
        logging.fatal("The net type is wrong. It should be one of " + ", ".join(NET_TYPES) + ".")
        parser.print_help(sys.stderr)
        sys.exit(1)
    if args.dataset_type != "voc":
        logging.fatal(f"Dataset type {args.dataset_type} is not supported by this stand-in (voc only).")
        sys.exit(1)
    if not args.trained_model or not args.dataset:
        parser.error("--trained_model and --dataset are needed")

    eval_path = pathlib.Path(args.eval_dir)
    eval_path.mkdir(parents=True, exist_ok=True)

    dataset = VOCDataset(args.dataset, is_test=True, size=args.resolution)
    class_names = read_labels(args.label_file) if args.label_file else list(dataset.class_names)

    timer = time.time()
    model = create_net(args.net, len(class_names), args.resolution)
    load_state(model, args.trained_model)
    model.to(device).eval()
    print(f"It took {time.time() - timer} seconds to load the model.", flush=True)

    predictor = Predictor(model, device=device, nms_method=args.nms_method)

    def progress(done, total, seconds):
        print(f"processed {done}/{total} images ({seconds:.2f} s)", flush=True)

    aps, detections = evaluate(predictor, dataset, class_names, args.iou_threshold, args.use_2007_metric,
                               progress=progress)

    for name in class_names[1:]:
        with open(eval_path / f"det_test_{name}.txt", "w") as f:
            for image_id, score, x1, y1, x2, y2 in detections[name]:
                # back to VOC's 1-based pixel indexes
                f.write(f"{image_id} {score} {x1 + 1} {y1 + 1} {x2 + 1} {y2 + 1}\n")

    print("\n\nAverage Precision Per-class:", flush=True)
    for name, ap in zip(class_names[1:], aps):
        print(f"{name}: {ap}", flush=True)
    mean_ap = sum(aps) / len(aps) if aps else 0.0
    print(f"\nAverage Precision Across All Classes:{mean_ap}", flush=True)


if __name__ == '__main__':
    main()
