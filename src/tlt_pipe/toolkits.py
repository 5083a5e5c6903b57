"""What differs between TLT 2.0, TAO 3.x, TAO 4.0, TAO 5.x and TAO 6.26.3: plain data plus small functions.

Adding a toolkit version means adding one Toolkit row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tlt_pipe.errors import ConfigError


@dataclass(frozen=True)
class Toolkit:
    version: str
    image: str  # the TF1 detection image (train, evaluate, prune, export, inference, converter)
    detectnet_image: str  # detectnet_v2 (and faster_rcnn) sometimes ship in a different TF build
    deploy_image: str | None  # TAO Deploy image with `<net> gen_trt_engine`, when the engine is built there
    legacy_commands: bool  # TLT 2.0: tlt-train <net>, tlt-prune, tlt-converter ...
    checkpoint_ext: str  # what train saves
    export_ext: str  # what export writes
    engine_builder: str  # "converter" | "gen_trt_engine"
    key_required: bool  # encrypted checkpoints need TLTPIPE_KEY to be read back
    dynamic_etlt: bool  # exported .etlt of ssd/yolo/retinanet hold ONNX: converter needs -p
    calibrate_in_export: bool  # INT8 calibration happens in export (TAO <= 3) or in gen_trt_engine
    results_flag: bool  # inference takes -r RESULTS (TAO 4/5) rather than -o IMAGES -l LABELS
    writes_status_json: bool
    # The spec schema the toolkit's containers parse (spec_schema): TAO 3.x is judged by TAO 4.0's, the
    # nearest NVIDIA publishes.
    schema: str
    # export --gen_ds_config (labels.txt, nvinfer_config.txt) arrived with TAO 3; NVIDIA's TLT 2.0
    # commands never pass it.
    export_ds_config: bool = True
    # The PyTorch image of the toolkit's PyTorch networks (RT-DETR, DINO), when it has them.
    pyt_image: str | None = None
    # The release of the TF1 image when it is not the toolkit's own: TAO 6's launcher runs the TF1 networks
    # in TAO 5.0.0's image (their last), so their tasks behave as 5.0's.
    tf1_release: str | None = None


_TAO3_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit-tf:v{v}-tf1.15.5-py3"
_TAO3_DETECTNET = "nvcr.io/nvidia/tao/tao-toolkit-tf:v{v}-tf1.15.4-py3"


def _tao3(version: str, *, dynamic_etlt: bool) -> Toolkit:
    return Toolkit(
        version=version,
        image=_TAO3_IMAGE.format(v=version),
        detectnet_image=_TAO3_DETECTNET.format(v=version),
        deploy_image=None,
        legacy_commands=False,
        checkpoint_ext="tlt",
        export_ext="etlt",
        engine_builder="converter",
        key_required=True,
        dynamic_etlt=dynamic_etlt,
        calibrate_in_export=True,
        results_flag=False,
        writes_status_json=False,
        schema="4.0",
    )


def _tao5(version: str, *, deploy_image: str, pyt_image: str | None = None, tf1_release: str | None = None) -> Toolkit:
    """TAO 5.0's TF1 image with a TAO Deploy image for the engines."""
    return Toolkit(
        version=version,
        image="nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5",
        detectnet_image="nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5",
        deploy_image=deploy_image,
        legacy_commands=False,
        checkpoint_ext="hdf5",
        export_ext="onnx",
        engine_builder="gen_trt_engine",
        key_required=False,
        dynamic_etlt=False,
        calibrate_in_export=False,
        results_flag=True,
        writes_status_json=True,
        schema="5.0",
        pyt_image=pyt_image,
        tf1_release=tf1_release,
    )


TOOLKITS: dict[str, Toolkit] = {
    "2.0": Toolkit(
        version="2.0",
        image="nvcr.io/nvidia/tlt-streamanalytics:v2.0_py3",
        detectnet_image="nvcr.io/nvidia/tlt-streamanalytics:v2.0_py3",
        deploy_image=None,
        legacy_commands=True,
        checkpoint_ext="tlt",
        export_ext="etlt",
        engine_builder="converter",
        key_required=True,
        dynamic_etlt=False,
        calibrate_in_export=True,
        results_flag=False,
        writes_status_json=False,
        schema="2.0",
        export_ds_config=False,
    ),
    "3.21.11": _tao3("3.21.11", dynamic_etlt=False),
    "3.22.05": _tao3("3.22.05", dynamic_etlt=True),
    "4.0": Toolkit(
        version="4.0",
        image="nvcr.io/nvidia/tao/tao-toolkit:4.0.0-tf1.15.5",
        detectnet_image="nvcr.io/nvidia/tao/tao-toolkit:4.0.0-tf1.15.5",
        deploy_image="nvcr.io/nvidia/tao/tao-toolkit:4.0.0-deploy",
        legacy_commands=False,
        checkpoint_ext="tlt",
        export_ext="etlt",
        engine_builder="converter",
        key_required=True,
        dynamic_etlt=True,
        calibrate_in_export=False,
        results_flag=True,
        writes_status_json=True,
        schema="4.0",
    ),
    "5.0": _tao5("5.0", deploy_image="nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy"),
    # NVIDIA's launcher nvidia-tao 6.26.3 (nvidia_tao_cli/config/config.json): the TF1 networks train, prune
    # and export in 5.0.0-tf1.15.5 and build and run their engines in 6.26.3-deploy; the PyTorch
    # detectors run in 6.26.3-pyt.
    "6.26.3": _tao5("6.26.3", deploy_image="nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy",
                    pyt_image="nvcr.io/nvidia/tao/tao-toolkit:6.26.3-pyt", tf1_release="5.0"),
}

# Spellings users write for the same release.
_ALIASES = {"2": "2.0", "3": "3.22.05", "3.x": "3.22.05", "4": "4.0", "4.0.0": "4.0", "5": "5.0", "5.x": "5.0",
            "5.0.0": "5.0", "5.5": "5.0", "5.5.0": "5.0", "6": "6.26.3", "6.26": "6.26.3"}


def normalize_version(value: object) -> str:
    """The canonical version key for what a user wrote (YAML may give 5.0 as a float)."""
    text = str(value).strip()
    text = _ALIASES.get(text, text)
    if text not in TOOLKITS:
        known = ", ".join(f'"{v}"' for v in TOOLKITS)
        raise ValueError(f"unknown toolkit version {value!r}; known: {known}")
    return text


def get_toolkit(version: str) -> Toolkit:
    try:
        return TOOLKITS[normalize_version(version)]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


# The entrypoint names TLT 2.0 used in place of `<net> <subcommand>`.
_LEGACY = {
    "dataset_convert": ("tlt-dataset-convert", False),
    "train": ("tlt-train", True),
    "evaluate": ("tlt-evaluate", True),
    "prune": ("tlt-prune", False),
    "inference": ("tlt-infer", True),
    "export": ("tlt-export", True),
    "calibration_tensorfile": ("tlt-int8-tensorfile", True),
}


def task_command(toolkit: Toolkit, network: str, subcommand: str) -> list[str]:
    """The in-container command prefix for one TAO task, e.g. ['ssd', 'train'] or ['tlt-train', 'ssd']."""
    if subcommand == "converter":
        return ["tlt-converter" if toolkit.legacy_commands else "converter"]
    if toolkit.legacy_commands:
        if subcommand not in _LEGACY:
            raise ConfigError(f"TLT {toolkit.version} has no '{subcommand}' task")
        name, takes_network = _LEGACY[subcommand]
        return [name, network] if takes_network else [name]
    return [network, subcommand]
