"""Small helpers shared by the scripts."""
import os

import torch


def str2bool(text):
    """Command-line booleans the way pytorch-ssd reads them: 'true' or '1' (any case) is True, anything else False."""
    return str(text).strip().lower() in ("true", "1")


def limit_threads():
    """Keep torch from starting more threads than CPUs this process may run on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    if torch.get_num_threads() > usable:
        torch.set_num_threads(max(1, usable))


def pick_device(use_cuda):
    """CUDA only when it was asked for and is there."""
    if use_cuda and torch.cuda.is_available():
        return torch.device("cuda:0")
    return torch.device("cpu")


def store_labels(path, class_names):
    with open(path, "w") as f:
        for name in class_names:
            f.write(name + "\n")


def read_labels(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]
