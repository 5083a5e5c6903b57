"""Which commands, networks and artifacts exist in which toolkit version and image role."""

from __future__ import annotations

VERSIONS = ("2.0", "3.21.11", "3.22.05", "4.0", "5.0", "6.26.3")
ROLES = ("tf", "deploy", "pyt")

# The images each toolkit version has. TAO 6.26.3 runs its TF1 networks in TAO 5.0's TF1 image (its
# launcher maps them there), so it has no TF image of its own, and adds the PyTorch image (`pyt`).
IMAGE_ROLES = {"2.0": ("tf",), "3.21.11": ("tf",), "3.22.05": ("tf",), "4.0": ("tf", "deploy"),
               "5.0": ("tf", "deploy"), "6.26.3": ("deploy", "pyt")}

TF_NETS = ("ssd", "dssd", "retinanet", "yolo_v3", "yolo_v4", "yolo_v4_tiny", "detectnet_v2")
# TLT 2.0 called YOLOv3 `yolo`; the contract writes yolo_v3, so both names are accepted there.
# YOLOv4 did not exist before TAO 3.0.
TLT2_NETS = ("detectnet_v2", "ssd", "dssd", "retinanet", "yolo", "yolo_v3")
NET_ALIASES = {"yolo": "yolo_v3"}

SSD_LIKE_SUBCOMMANDS = ("dataset_convert", "train", "evaluate", "inference", "prune", "export")
SUBCOMMANDS = {
    "ssd": SSD_LIKE_SUBCOMMANDS,
    "dssd": SSD_LIKE_SUBCOMMANDS,
    "retinanet": SSD_LIKE_SUBCOMMANDS,
    "yolo_v3": SSD_LIKE_SUBCOMMANDS + ("kmeans",),
    "yolo_v4": SSD_LIKE_SUBCOMMANDS + ("kmeans",),
    "yolo_v4_tiny": SSD_LIKE_SUBCOMMANDS + ("kmeans",),
    "detectnet_v2": SSD_LIKE_SUBCOMMANDS + ("calibration_tensorfile",),
}
DEPLOY_SUBCOMMANDS = ("gen_trt_engine", "evaluate", "inference")

# TAO's PyTorch detectors: Hydra-style tasks (`NET TASK -e SPEC.yaml key=value ...`) in the PyTorch
# image, and their TensorRT tasks in the deploy image of the same toolkit.
PYT_NETS = ("rtdetr", "dino")
PYT_SUBCOMMANDS = ("train", "evaluate", "inference", "export")
PYT_TITLES = {"rtdetr": "RT-DETR", "dino": "DINO"}

# TLT 2.0 command -> subcommand; "net" says whether the network name follows the command.
TLT2_COMMANDS = {
    "tlt-dataset-convert": ("dataset_convert", False),
    "tlt-train": ("train", True),
    "tlt-evaluate": ("evaluate", True),
    "tlt-prune": ("prune", False),
    "tlt-infer": ("inference", True),
    "tlt-export": ("export", True),
    "tlt-int8-tensorfile": ("calibration_tensorfile", True),
    "tlt-converter": ("converter", False),
}
TLT2_INT8_TENSORFILE_NETS = ("detectnet_v2",)

# TensorRT version per image: an engine only runs where it was built (or a same-TRT image).
TRT_VERSIONS = {
    ("2.0", "tf"): "7.0.0",
    ("3.21.11", "tf"): "7.2.3",
    ("3.22.05", "tf"): "8.2.5",
    ("4.0", "tf"): "8.5.1",
    ("4.0", "deploy"): "8.5.1",
    ("5.0", "tf"): "8.5.3",
    ("5.0", "deploy"): "8.6.1",
    ("6.26.3", "deploy"): "10.8.0",
    ("6.26.3", "pyt"): "10.8.0",
}

# Per network: spec kind (see nvidia.py), the config message, file prefix, output nodes and the
# etlt input node.
NETS = {
    "ssd": dict(schema="ssd", config="ssd_config", prefix="ssd", nodes=("NMS",), input="Input",
                title="SSD"),
    "dssd": dict(schema="dssd", config="dssd_config", prefix="dssd", nodes=("NMS",), input="Input",
                 title="DSSD"),
    "retinanet": dict(schema="retinanet", config="retinanet_config", prefix="retinanet",
                      nodes=("NMS",), input="Input", title="RetinaNet"),
    "yolo_v3": dict(schema="yolo_v3", config="yolov3_config", prefix="yolov3",
                    nodes=("BatchedNMS",), input="Input", title="YOLOv3"),
    "yolo_v4": dict(schema="yolo_v4", config="yolov4_config", prefix="yolov4",
                    nodes=("BatchedNMS",), input="Input", title="YOLOv4"),
    "yolo_v4_tiny": dict(schema="yolo_v4_tiny", config="yolov4_config", prefix="yolov4",
                         nodes=("BatchedNMS",), input="Input", title="YOLOv4-tiny"),
    "detectnet_v2": dict(schema="detectnet_v2", config="model_config", prefix=None,
                         nodes=("output_cov/Sigmoid", "output_bbox/BiasAdd"), input="input_1",
                         title="DetectNet_v2"),
}

# Commands that are one entrypoint in NVIDIA's packages (setup.py points both names at the same
# code): `dssd` is `ssd` (the spec's ssd_config or dssd_config decides), `yolo_v4_tiny` is `yolo_v4`
# (the backbone decides).
FAMILIES = {"dssd": "ssd", "yolo_v4_tiny": "yolo_v4"}


def family(net: str) -> str:
    return FAMILIES.get(net, net)


# The published definitions (spec schemas) each toolkit version follows: NVIDIA's nvidia-tao-tf1
# wheel of TAO 4.0 (the only TF1 wheel with them) stands for TAO 3.x and 4.0, and for TLT 2.0's
# DetectNet_v2 and dataset_convert specs; nvidia-tao-deploy stands for TAO 5.x and for the TF1
# networks' deploy tasks of 6.26.3 (the same TAO Deploy parsers and messages as deploy-5.0).
SCHEMA_VERSIONS = {"2.0": "4.0", "3.21.11": "4.0", "3.22.05": "4.0", "4.0": "4.0", "5.0": "5.0",
                   "6.26.3": "5.0"}


def schema_version(version: str) -> str:
    return SCHEMA_VERSIONS[version]


# TLT 2.0 gave SSD, DSSD, RetinaNet and YOLOv3 DetectNet_v2's dataset and augmentation messages.
TLT2_NETS_INFO = {
    "ssd": dict(schema="ssd_tlt2"),
    "dssd": dict(schema="ssd_tlt2"),
    "retinanet": dict(schema="retinanet_tlt2"),
    "yolo_v3": dict(schema="yolo_tlt2"),  # its block is yolo_config
}


def net_info(net: str, version: str) -> dict:
    """NETS[net] as the image of this version reads specs (the spec kind)."""
    if version == "2.0" and net in TLT2_NETS_INFO:
        return {**NETS[net], **TLT2_NETS_INFO[net]}
    return NETS[net]


_COMMON_BACKBONES = {
    "resnet": (10, 18, 34, 50, 101),
    "vgg": (16, 19),
    "darknet": (19, 53),
    "googlenet": None,
    "mobilenet_v1": None,
    "mobilenet_v2": None,
    "squeezenet": None,
    "efficientnet_b0": None,
}
ARCHS = {
    "ssd": _COMMON_BACKBONES,
    "dssd": _COMMON_BACKBONES,
    "retinanet": _COMMON_BACKBONES,
    "yolo_v3": _COMMON_BACKBONES,
    "yolo_v4": dict(_COMMON_BACKBONES, cspdarknet=(19, 53), cspdarknet_tiny=None,
                    cspdarknet_tiny_3l=None),
    "detectnet_v2": dict(_COMMON_BACKBONES, resnet=(10, 18, 34, 50)),
}
ARCHS["yolo_v4_tiny"] = ARCHS["yolo_v4"]
# nlayers is part of artifact names only for these backbones
NLAYER_ARCHS = ("resnet", "vgg", "darknet", "cspdarknet")


def major(version: str) -> int:
    return int(version.split(".")[0])


def tf_nets(version: str) -> tuple[str, ...]:
    return TLT2_NETS if version == "2.0" else TF_NETS


def has_pyt_nets(version: str) -> bool:
    return "pyt" in IMAGE_ROLES.get(version, ())


def commands(version: str, role: str) -> list[str]:
    """Executable names installed on PATH in the image of this version and role."""
    if role not in IMAGE_ROLES.get(version, ()):
        raise ValueError(f"unknown emulator image {role}-{version}")
    if role == "pyt":
        return list(PYT_NETS)
    if role == "deploy":
        return list(TF_NETS) + (list(PYT_NETS) if has_pyt_nets(version) else [])
    if version == "2.0":
        return list(TLT2_COMMANDS)
    cmds = list(TF_NETS)
    if major(version) in (3, 4):
        cmds.append("converter")
    return cmds


def subcommands(net: str, version: str, role: str) -> tuple[str, ...]:
    if role == "pyt":
        return PYT_SUBCOMMANDS
    if role == "deploy":
        return DEPLOY_SUBCOMMANDS
    return SUBCOMMANDS[net]


def checkpoint_ext(version: str) -> str:
    return "hdf5" if major(version) >= 5 else "tlt"


def export_ext(version: str) -> str:
    return "onnx" if major(version) >= 5 else "etlt"


def encrypted_checkpoints(version: str) -> bool:
    return major(version) < 5


def etlt_has_onnx(version: str, net: str) -> bool:
    """TAO 3.22.05 and 4.0 export the SSD family and YOLO as ONNX inside the .etlt (dynamic shape)."""
    return net != "detectnet_v2" and version in ("3.22.05", "4.0")


def inference_uses_results_dir(version: str) -> bool:
    return major(version) >= 4


def writes_status_json(version: str) -> bool:
    return major(version) >= 4


def export_calibrates(version: str) -> bool:
    return major(version) <= 3


def model_stem(net: str, arch: str, nlayers: int) -> str:
    """`ssd_resnet18`, `ssd_mobilenet_v2`, `yolov4_cspdarknet_tiny`."""
    prefix = NETS[net]["prefix"]
    return f"{prefix}_{arch_tag(arch, nlayers)}"


def arch_tag(arch: str, nlayers: int) -> str:
    return f"{arch}{nlayers}" if arch in NLAYER_ARCHS else arch
