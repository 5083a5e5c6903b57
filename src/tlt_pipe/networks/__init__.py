"""What differs between the detection networks: artifact names, templates, how models are passed.

Each family module defines Network rows; this package collects them in NETWORKS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tlt_pipe.errors import ConfigError
from tlt_pipe.networks.passing import ModelPassing
from tlt_pipe.toolkits import TOOLKITS

# Architectures whose checkpoint and CSV names carry the layer count (ssd_resnet18_..., not ssd_mobilenet_v2_...).
_NLAYERS_IN_NAME = ("resnet", "vgg", "darknet", "cspdarknet")
# The layer count an architecture gets when the config names the architecture but not its depth.
DEFAULT_NLAYERS = {"resnet": 18, "vgg": 16, "darknet": 53, "cspdarknet": 53}
# The backbones (model.arch) every TAO detection network builds; a family adds its own (YOLOv4: CSPDarkNet).
BACKBONES = ("resnet", "vgg", "darknet", "googlenet", "mobilenet_v1", "mobilenet_v2", "squeezenet", "efficientnet_b0")
ALL_TOOLKITS = frozenset(TOOLKITS)


@dataclass(frozen=True)
class Nvinfer:
    """How DeepStream's gst-nvinfer reads this network's exported model (NVIDIA's TAO sample configs):
    the input's colour order and scaling, the bounding-box parser of its output layer, and the clustering
    after it (gst-nvinfer's cluster-mode: 2 NMS, 4 none, for outputs an NMS layer has already reduced)."""

    color_format: int  # model-color-format: 0 RGB, 1 BGR
    scale: float  # net-scale-factor
    offsets: tuple[float, ...] = ()  # per-channel means subtracted first
    parser: str | None = None  # parse-bbox-func-name in DeepStream's custom parser library; None: built in
    cluster_mode: int = 4
    maintain_aspect_ratio: bool = False


# The NMS-layer networks (SSD, DSSD, RetinaNet: NMS; YOLO: BatchedNMS): BGR with Caffe's ImageNet means.
NMS_LAYER = Nvinfer(color_format=1, scale=1.0, offsets=(103.939, 116.779, 123.68), parser="NvDsInferParseCustomNMSTLT")
BATCHED_NMS_LAYER = Nvinfer(color_format=1, scale=1.0, offsets=(103.939, 116.779, 123.68),
                            parser="NvDsInferParseCustomBatchedNMSTLT", maintain_aspect_ratio=True)


@dataclass(frozen=True)
class Network:
    name: str  # the TAO task name: ssd, yolo_v4, ...
    family: str  # specs_templates/<family>/
    checkpoint_prefix: str  # weights/<prefix>_<arch><nlayers>_epoch_<NNN>.<ext>
    output_nodes: str  # converter -o
    input_name: str  # converter -p input name for dynamic-shape models
    model_passing: ModelPassing  # how pretrained/resume/pruned models reach train (networks/passing.py)
    toolkits: frozenset[str]  # versions whose toolkit ships this network
    archs: tuple[str, ...]  # the model.arch values it builds (default_arch among them)
    # "tao": TAO's TF1 tasks in its containers; "tao_pyt": TAO's PyTorch tasks with YAML specs
    # (stages/tao_pyt.py); "pytorch_ssd": pytorch-ssd's scripts (stages/pytorch_ssd.py).
    framework: str = "tao"
    # What prepare writes: KITTI train/ and val/, VOC, or COCO JSON per fold (datasets/layout.py).
    dataset_layout: str = "kitti"
    # The toolkit a config that names none gets, when the network is not in the default toolkit.
    default_toolkit: str | None = None
    labels_with_background: bool = False
    # The architecture and input size `tltpipe init` and an empty `model:` section use.
    default_arch: str = "resnet"
    default_nlayers: int | None = 18
    default_input: tuple[int, int] = (300, 300)  # width, height
    # NVIDIA's pretrained backbones on NGC for this network, one version per backbone (e.g. :resnet18).
    ngc_model: str = "nvidia/tao/pretrained_object_detection"
    input_multiple: int = 1  # the input width and height must be multiples of this
    legacy_name: str | None = None  # TLT 2.0's task name when it differs (yolo for yolo_v3)
    # Exported .etlt holds ONNX (dynamic shape, converter -p) where the toolkit says so.
    dynamic_shape: bool = True
    anchor_groups: tuple[str, ...] = ()  # YOLO: the spec's anchor shape fields, smallest first
    prune_reads_spec: bool = False  # YOLO's prune requires -e (the experiment spec)
    tlt2_export_spec: bool = True  # tlt-export takes -e (NVIDIA's TLT 2.0 DetectNet_v2 export does not)
    # DetectNet_v2: its own TF image build on TAO 3, images resized offline to the input, INT8 calibration
    # batches from a tensorfile on TLT 2 / TAO 3, and an inference spec of its own that names the model
    # (no -m, no -t).
    own_image: bool = False
    always_resized: bool = False
    int8_tensorfile: bool = False
    inference_spec: str | None = None  # template of the inference spec, when inference reads one
    # Validation runs at every checkpoint (YOLO's eval_config has no validation period), not every
    # train.validation_period epochs; TLT 2.0's layout still had the field.
    validates_at_checkpoints: bool = False
    # TLT 2.0 gave this network DetectNet_v2's layout (dataset_config and augmentation_config,
    # validation from TFRecords, images already at the input size).
    legacy_layout: bool = False
    nvinfer: Nvinfer = NMS_LAYER  # how DeepStream reads the exported model (deepstream.py)
    # Checks the TAO loader makes after parsing (values in range): spec message -> problems.
    check_spec: Callable[[object], list[str]] = field(default=lambda message: [], compare=False)
    # TAO's PyTorch networks: the part of the spec's dataset section that is the network's own, from the
    # validation source ({image_dir, json_file}) and the input (width, height).
    spec_dataset: Callable[[dict[str, str], int, int], dict] | None = field(default=None, compare=False)

    def task_name(self, legacy: bool) -> str:
        """The network argument of TAO commands (TLT 2.0 spelled some differently)."""
        return self.legacy_name if legacy and self.legacy_name else self.name

    def tlt2_layout(self, toolkit_version: str) -> bool:
        """Whether this network's experiment spec takes TLT 2.0's layout in this toolkit."""
        return toolkit_version == "2.0" and self.legacy_layout

    def validation_at_checkpoints(self, toolkit_version: str) -> bool:
        """Whether this toolkit validates at every checkpoint_interval instead of a validation period."""
        return self.validates_at_checkpoints and not self.tlt2_layout(toolkit_version)

    def trains_on_resized(self, toolkit_version: str) -> bool:
        """Whether training reads images already at the model input size (no resizing in the
        data loader): DetectNet_v2 always, the TLT 2.0-layout networks in TLT 2.0."""
        return self.always_resized or self.tlt2_layout(toolkit_version)

    def validation_records(self, toolkit_version: str) -> bool:
        """Whether validation reads the val/ split from TFRecords (stage tfrecords_val)."""
        return self.trains_on_resized(toolkit_version)

    def arch_tag(self, arch: str, nlayers: int | None) -> str:
        """`resnet18`, `mobilenet_v2`: the architecture as TAO writes it in file names."""
        if nlayers is not None and arch in _NLAYERS_IN_NAME:
            return f"{arch}{nlayers}"
        return arch

    def checkpoint_name(self, arch: str, nlayers: int | None, epoch: int | str, ext: str) -> str:
        """weights/ file name of an epoch's checkpoint (a str epoch, e.g. "<best>", is written as is)."""
        number = epoch if isinstance(epoch, str) else f"{epoch:03d}"
        return f"{self.checkpoint_prefix}_{self.arch_tag(arch, nlayers)}_epoch_{number}.{ext}"

    def training_csv(self, arch: str, nlayers: int | None) -> str:
        return f"{self.checkpoint_prefix}_training_log_{self.arch_tag(arch, nlayers)}.csv"


def _load() -> dict[str, Network]:
    from tlt_pipe.networks import detectnet_v2, dino, rtdetr, ssd, ssd_mobilenet, yolo

    rows = [*ssd.NETWORKS, *yolo.NETWORKS, *detectnet_v2.NETWORKS, *ssd_mobilenet.NETWORKS, *rtdetr.NETWORKS,
            *dino.NETWORKS]
    return {row.name: row for row in rows}


NETWORKS: dict[str, Network] = _load()


def get_network(name: str, toolkit_version: str) -> Network:
    network = NETWORKS.get(name)
    if network is None:
        known = ", ".join(sorted(NETWORKS))
        raise ConfigError(f"network {name!r} is not supported yet; supported: {known}")
    if toolkit_version not in network.toolkits:
        versions = ", ".join(sorted(network.toolkits))
        raise ConfigError(f"{name} is not available in toolkit {toolkit_version}; it ships in: {versions}")
    return network
