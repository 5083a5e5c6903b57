"""SSD-Mobilenet with PyTorch: jetson-inference's pytorch-ssd scripts (train_ssd.py, eval_ssd.py, onnx_export.py)
in the user's checkout (`pytorch_ssd.repo`), on a VOC dataset. Its stages are in stages/pytorch_ssd.py; the TAO
fields of the row below are unused (no TAO task, spec or engine)."""

from __future__ import annotations

from tlt_pipe.networks import ALL_TOOLKITS, Network
from tlt_pipe.networks.passing import BY_FLAG

NETS = ("mb1-ssd", "mb1-ssd-lite", "mb2-ssd-lite", "vgg16-ssd")  # pytorch_ssd.net
ONNX_INPUT, ONNX_SCORES, ONNX_BOXES = "input_0", "scores", "boxes"  # what onnx_export.py names, detectnet is told

NETWORKS = (
    Network(
        name="ssd_mobilenet", family="pytorch_ssd", checkpoint_prefix="mb1-ssd", output_nodes=f"{ONNX_SCORES},{ONNX_BOXES}",
        input_name=ONNX_INPUT, model_passing=BY_FLAG, toolkits=ALL_TOOLKITS, labels_with_background=True,
        archs=("mobilenet",),  # the PyTorch network itself is pytorch_ssd.net
        default_arch="mobilenet", default_nlayers=None, default_input=(300, 300), dynamic_shape=False,
        framework="pytorch_ssd", dataset_layout="voc",
    ),
)
