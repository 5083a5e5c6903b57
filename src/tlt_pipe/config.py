"""The config schema (pydantic) and its loader. Every error names the file, the line and the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from tlt_pipe import yamldoc
from tlt_pipe.datasets.options import MAX_SIDE
from tlt_pipe.errors import ConfigError
from tlt_pipe.ngc import is_ref as is_ngc_ref, parse_ref as parse_ngc_ref
from tlt_pipe.registry import (DATASET_FORMATS, DEFAULT_RUNS, DEFAULT_TOOLKIT, NAME_PATTERN, NETWORKS, RUNNERS,
                               SCORED_STAGES)
from tlt_pipe.regular_file import read_text
from tlt_pipe.spec_schema import FLOAT32_MAX, INT32_MAX, UINT32_MAX
from tlt_pipe.toolkits import normalize_version
DataType = Literal["fp32", "fp16", "int8"]
# TAO reads the counts and seeds below as protobuf uint32 fields and the learning rates and weights as float
# (32-bit) fields: a value past those is refused at its config key, not in the rendered spec.
UInt32 = Annotated[int, Field(ge=0, le=UINT32_MAX)]


def _float32(value: float) -> float:
    """The value, when a 32-bit float holds it (else it would be inf in the spec)."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{value:g} is past the largest 32-bit float ({FLOAT32_MAX:.4g}), which TAO reads")
    return value


Float32 = Annotated[float, AfterValidator(_float32)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no config number is nan or inf

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        """A key that takes only a number refuses true/false, which pydantic would turn into 1 or 0 (`epochs:
        true` is not one epoch). Text that reads as a number stays accepted: PyYAML reads 1e-3 as text."""
        if isinstance(data, Mapping):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if isinstance(value, bool) and _numeric_only(field.annotation):
                    raise _key_error(name, value, _NOT_A_BOOL.format(value))
                inner = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) \
                    else ()
                for key, item in inner:  # a dict of numbers (ulimits) or a list of them (freeze_blocks)
                    if isinstance(item, bool) and _numeric_items(field.annotation):
                        raise _key_error((name, key), item, _NOT_A_BOOL.format(item))
        return data


_NOT_A_BOOL = "expected a number, got {} (YAML reads true, false, yes, no, on and off as true or false)"


def _numeric_only(annotation: Any) -> bool:
    """int, float, or either of them or None (constrained or not: UInt32 is an int)."""
    kinds = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    kinds = tuple(get_args(k)[0] if get_origin(k) is Annotated else k for k in kinds)
    return bool(kinds) and all(k in (int, float, type(None)) for k in kinds) and any(k in (int, float) for k in kinds)


def _numeric_items(annotation: Any) -> bool:
    """A list of numbers or a mapping to numbers (or either or None)."""
    kinds = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    for kind in kinds:
        args = get_args(kind)
        if get_origin(kind) is list and args and _numeric_only(args[0]):
            return True
        if get_origin(kind) is dict and len(args) == 2 and _numeric_only(args[1]):
            return True
    return False


def _key_error(key: str | tuple[str, ...], value: Any, message: str) -> ValidationError:
    """A validation error at `key` (or a path of keys) below the field being validated, so the message names
    that key and its line."""
    error = PydanticCustomError("value_error", "{message}", {"message": message})
    loc = key if isinstance(key, tuple) else (key,)
    return ValidationError.from_exception_data("Config", [InitErrorDetails(type=error, loc=loc, input=value)])


def is_env_name(name: Any) -> bool:
    """What execve and Docker take as an environment variable name."""
    return isinstance(name, str) and bool(name) and "=" not in name and "\0" not in name


class DatasetConfig(_Model):
    format: Literal[DATASET_FORMATS] = "kitti"
    path: Path
    classes: dict[str, str] | None = None  # source class -> training class; None keeps every class
    val_split: float = Field(10.0, ge=0, lt=100)  # percent
    seed: int = 0
    subsets: list[str] | None = None
    names: Path | None = None  # yolo: obj.names or data.yaml
    resize: str | None = None  # "WxH"
    resize_mode: Literal["stretch", "letterbox"] = "stretch"

    @field_validator("resize")
    @classmethod
    def _resize(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"expected WIDTHxHEIGHT such as 960x544, got {value!r}")
        if max(int(p) for p in parts) > MAX_SIDE:
            raise ValueError(f"{value}: at most {MAX_SIDE} pixels a side (a model input, not a poster)")
        return value.lower()

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for target in (value or {}).values():
            if not target or any(c.isspace() for c in target):
                raise ValueError(f"training class {target!r} must be non-empty and without spaces (KITTI splits on whitespace)")
        return value


class ModelConfig(_Model):
    # Left out: the network's default (ssd: resnet 18 at 300x300, yolo_v4: resnet 18 at 320x320,
    # yolo_v4_tiny: cspdarknet_tiny, yolo_v3: darknet 53, detectnet_v2: resnet 18 at 960x544).
    arch: str = "resnet"
    # The SSD and YOLO families' nlayers is a uint32, detectnet_v2's model_config.num_layers an int32.
    nlayers: int | None = Field(18, ge=0, le=INT32_MAX)
    input_width: int = Field(300, gt=32, le=MAX_SIDE)
    input_height: int = Field(300, gt=32, le=MAX_SIDE)
    input_channels: Literal[1, 3] = 3
    pretrained: Path | None = None  # a file, or ngc:ORG/[TEAM/]NAME:VERSION[/FILE] (then in `ngc`, resolved at run time)
    ngc: str | None = None
    freeze_bn: bool = False
    freeze_blocks: list[UInt32] = [0, 1]

    @model_validator(mode="before")
    @classmethod
    def _ngc_model(cls, data: Any) -> Any:
        """`pretrained: ngc:...` names an NGC model: kept in `ngc` (the file is found in the cache when a run starts)."""
        if isinstance(data, Mapping) and is_ngc_ref(data.get("pretrained")):
            try:
                ref = parse_ngc_ref(data["pretrained"])
            except ValueError as exc:
                raise ValueError(f"pretrained: {exc}") from None
            data = {**data, "ngc": str(ref), "pretrained": None}
        return data

    @field_validator("ngc")
    @classmethod
    def _ngc_ref(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_ngc_ref(value))


class LearningRateConfig(_Model):
    min: Float32 = Field(5e-5, gt=0)
    max: Float32 = Field(2e-2, gt=0)
    soft_start: float = Field(0.15, gt=0, lt=1)
    annealing: float = Field(0.8, gt=0, lt=1)


class RegularizerConfig(_Model):
    type: Literal["NO_REG", "L1", "L2"] = "L1"
    weight: Float32 = Field(3e-5, ge=0)


class TrainConfig(_Model):
    epochs: int = Field(80, ge=1, le=UINT32_MAX)
    batch_size: int = Field(32, ge=1, le=UINT32_MAX)
    checkpoint_interval: int = Field(1, ge=1, le=UINT32_MAX)
    validation_period: int = Field(1, ge=1, le=UINT32_MAX)
    learning_rate: LearningRateConfig = LearningRateConfig()
    regularizer: RegularizerConfig = RegularizerConfig()
    n_workers: int = Field(8, ge=1, le=UINT32_MAX)
    enable_qat: bool = False
    use_amp: bool = False
    random_seed: UInt32 = 42


class RetrainConfig(_Model):
    """Keys left out are inherited from train, except the regularizer, which is NO_REG unless set."""

    epochs: int | None = Field(None, ge=1, le=UINT32_MAX)
    batch_size: int | None = Field(None, ge=1, le=UINT32_MAX)
    checkpoint_interval: int | None = Field(None, ge=1, le=UINT32_MAX)
    validation_period: int | None = Field(None, ge=1, le=UINT32_MAX)
    learning_rate: LearningRateConfig | None = None
    regularizer: RegularizerConfig = RegularizerConfig(type="NO_REG", weight=0.0)
    n_workers: int | None = Field(None, ge=1, le=UINT32_MAX)
    enable_qat: bool | None = None
    use_amp: bool | None = None

    def resolve(self, train: TrainConfig) -> TrainConfig:
        overrides = {k: v for k, v in self.model_dump(exclude_unset=False).items() if v is not None}
        overrides["regularizer"] = self.regularizer
        if self.learning_rate is not None:
            overrides["learning_rate"] = self.learning_rate
        return train.model_copy(update=overrides)


class AnchorsConfig(_Model):
    """YOLO anchor shapes: computed natively (seeded IoU k-medians) or by the container's kmeans."""

    mode: Literal["native", "tao"] = "native"
    count: int | None = Field(None, ge=1, le=INT32_MAX)  # default: 9 (yolo_v4_tiny: 6)
    seed: int = Field(0, ge=-INT32_MAX - 1, le=INT32_MAX)
    min_x: int = Field(0, ge=0, le=INT32_MAX)  # boxes narrower than this (pixels at the network input) are ignored
    min_y: int = Field(0, ge=0, le=INT32_MAX)
    max_steps: int = Field(10000, ge=1, le=INT32_MAX)


class EvaluateConfig(_Model):
    epoch: int | None = Field(None, ge=1, le=INT32_MAX)  # None: the best epoch by mAP in the training log


class PruneConfig(_Model):
    threshold: float = Field(0.1, gt=0, lt=1)
    equalization: Literal["union", "intersection", "arithmetic_mean", "geometric_mean"] = "intersection"
    norm: Literal["max", "L2"] | None = None
    granularity: int | None = Field(None, ge=1, le=INT32_MAX)
    min_filters: int | None = Field(None, ge=1, le=INT32_MAX)
    excluded_layers: list[str] = []

    @field_validator("excluded_layers")
    @classmethod
    def _layer_names(cls, names: list[str]) -> list[str]:
        for name in names:  # each is one word of prune's -el: a space or a leading '-' would be another option
            if not name or name.startswith("-") or any(c.isspace() or not c.isprintable() for c in name):
                raise ValueError(f"{yamldoc.short(name)!r} is not a layer name (one word, not starting with '-')")
        return names


class ExportConfig(_Model):
    data_type: DataType = "fp32"
    batch_size: int = Field(16, ge=1, le=INT32_MAX)


class EngineConfig(_Model):
    data_type: DataType = "fp32"
    max_batch_size: int = Field(16, ge=1, le=INT32_MAX)
    opt_batch_size: int | None = Field(None, ge=1, le=INT32_MAX)
    workspace_mb: int | None = Field(None, ge=1, le=INT32_MAX)
    # INT8 calibration on the training images: at most cal_batches batches of cal_batch_size
    # (default: export.batch_size; DetectNet_v2's tensorfile uses the training batch size), fewer
    # when the training set is smaller.
    cal_batches: int = Field(10, ge=1, le=INT32_MAX)
    cal_batch_size: int | None = Field(None, ge=1, le=INT32_MAX)


class InferenceConfig(_Model):
    images: Path | None = None  # None: the validation images of the prepared dataset
    threshold: float = Field(0.3, ge=0, le=1)


# The resource limits Docker can set on a container (its --ulimit types).
ULIMITS = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                     "rtprio", "rttime", "sigpending", "stack"})


def _port(value: int | str) -> bool:
    """A TCP/UDP port number, as a number or plain decimal text."""
    text = str(value)
    return not isinstance(value, bool) and text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


_INT64_MAX = 2**63 - 1  # Docker's sizes and limits are signed 64-bit


class DockerConfig(_Model):
    """What only the Docker runner uses (image, deploy_image, gpus and env moved to runner:)."""

    shm_size: str = "16G"
    ulimits: dict[str, int] = {"memlock": -1, "stack": 67108864}
    user: str | None = None  # None: your uid:gid, so outputs are yours; "" keeps the image's user
    network: str | None = None
    privileged: bool = False
    ports: dict[str, int | str] = {}
    tty: bool = True

    @field_validator("ulimits")
    @classmethod
    def _ulimit_names(cls, ulimits: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(ulimits) - ULIMITS)
        if unknown:
            raise _key_error(unknown[0], ulimits[unknown[0]], f"not a ulimit Docker sets; it sets {', '.join(sorted(ULIMITS))}")
        for name, value in ulimits.items():
            if not -1 <= value <= _INT64_MAX:
                raise _key_error(name, value, f"{yamldoc.short(value)} is not a limit Docker takes (-1 for unlimited, "
                                              "or 0 to 2^63-1)")
        return ulimits

    @field_validator("ports")
    @classmethod
    def _ports(cls, ports: dict[str, int | str]) -> dict[str, int | str]:
        for inside, outside in ports.items():
            number, _, protocol = inside.partition("/")
            if not _port(number) or protocol not in ("", "tcp", "udp", "sctp"):
                raise _key_error(inside, outside, "not a container port; write e.g. 8888 or 8888/udp (1 to 65535)")
            if not _port(outside):
                raise _key_error(inside, outside, f"{yamldoc.short(outside)!r} is not a host port (1 to 65535)")
        return ports

    @field_validator("shm_size", mode="before")
    @classmethod
    def _shm_bytes(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value  # 1024: bytes

    @field_validator("shm_size")
    @classmethod
    def _shm_size(cls, value: str) -> str:
        from tlt_pipe.doctor import size_bytes

        size = size_bytes(value)
        if size is None:
            raise ValueError(f"{yamldoc.short(value)!r} is not a size Docker reads; write e.g. 16G, 512m or 1024 (bytes)")
        if size > _INT64_MAX:
            raise ValueError(f"{yamldoc.short(value)!r} is past the largest size Docker takes (2^63-1 bytes)")
        return value


class DeepStreamConfig(_Model):
    """The deepstream stage's bundle: where deepstream-app reads video from and writes it to."""

    source: str = "file:///opt/nvidia/deepstream/deepstream/samples/streams/sample_1080p_h264.mp4"  # or camera:N, rtsp://
    sink: str = "file:deepstream_out.mp4"  # file:PATH, display, rtsp:PORT or fake
    tracker: bool = True
    parser_library: str = "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so"


class PytorchSsdConfig(_Model):
    """network: ssd_mobilenet: jetson-inference's pytorch-ssd scripts in your checkout (repo)."""

    repo: Path | None = None  # the folder with train_ssd.py, eval_ssd.py and onnx_export.py
    net: Literal["mb1-ssd", "mb1-ssd-lite", "mb2-ssd-lite", "vgg16-ssd"] = "mb1-ssd"
    pretrained: Path | None = None  # e.g. models/mobilenet-v1-ssd-mp-0_675.pth; None trains from scratch
    python: str = "python3"  # the interpreter that has the repo's requirements (torch, ...)
    lr: float = Field(0.01, gt=0)
    workers: int = Field(2, ge=0)  # --workers: data loader processes (0: in the training process)
    validation_epochs: int = Field(1, ge=1)
    # onnx_export.py puts its input on CUDA: "cpu" runs it with CUDA calls kept on the CPU; "auto": cpu when
    # runner.gpus is 0/none.
    export_device: Literal["auto", "cuda", "cpu"] = "auto"


class MlflowTracking(_Model):
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else MLflow's default
    experiment: str | None = None  # None: the config's name
    run_name: str | None = None  # None: the run directory's name

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        if value and (urlsplit(value).username or urlsplit(value).password):
            raise ValueError("credentials do not belong in the config (it is copied into every run directory); "
                             "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
                             "in the environment")
        return value


class ClearmlTracking(_Model):
    project: str | None = None  # None: tltpipe
    task_name: str | None = None  # None: the run directory's name


class SlurmConfig(_Model):
    """runner.kind: slurm: each container stage is one batch job (sbatch)."""

    partition: str | None = None  # --partition; None: the cluster's default
    gpus: int = Field(default=1, ge=0)  # --gpus per stage job (0: none)
    time: str | None = "24:00:00"  # --time
    account: str | None = None
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem: str | None = None  # --mem, e.g. 32G
    extra: list[str] = []  # further sbatch arguments, e.g. ["--qos=high", "--constraint=a100"]
    container: Literal["docker", "pyxis"] = "docker"  # how the job runs the stage's image on its node
    # Where the key is handed to a job (a file readable only by you, deleted when the stage ends): a
    # folder every node sees, outside the run directory. None: ~/.tltpipe/keys.
    key_dir: Path | None = None
    poll_s: float = Field(default=2.0, gt=0)  # how often squeue is asked while a job runs
    # How often a stage whose job Slurm took away (preempted, requeued, node failure) runs again; training
    # continues from its newest complete checkpoint.
    retries: int = Field(default=3, ge=0)

    @field_validator("time", mode="before")
    @classmethod
    def _time_quoted(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 24:00:00 as 86400 (base 60)
            raise ValueError(f"YAML read the time limit as the number {value}: quote it (time: '24:00:00')")
        return value

    @field_validator("mem", mode="before")
    @classmethod
    def _mem_number(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        """A time limit sbatch reads: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED."""
        if value is not None and not _SLURM_TIME.fullmatch(value):
            raise ValueError(f"{yamldoc.short(value)!r} is not a time limit sbatch reads; write e.g. 24:00:00, "
                             "2-00:00:00, 90 (minutes) or UNLIMITED")
        return value

    @field_validator("mem")
    @classmethod
    def _mem(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9]+[KMGTkmgt]?", value):
            raise ValueError(f"{yamldoc.short(value)!r} is not a memory size sbatch reads; write e.g. 32G or 4096 "
                             "(megabytes)")
        return value


_SLURM_TIME = re.compile(r"[0-9]+(:[0-9]+){0,2}|[0-9]+-[0-9]+(:[0-9]+){0,2}|(?i:unlimited|infinite)")


class RunnerConfig(_Model):
    """Where each stage's command runs, and what every runner needs: docker (the TAO images, the default),
    local (this machine's PATH, host paths; a Jetson or a machine with the tools installed) or slurm
    (a batch job per stage)."""

    kind: Literal[RUNNERS] = "docker"
    slurm: SlurmConfig = SlurmConfig()
    image: str | None = None  # the TF1 image; default: the toolkit's (docker.image before)
    deploy_image: str | None = None  # the TAO Deploy image; default: the toolkit's
    gpus: Literal["all", "none"] | int | list[int] = "all"  # "all", "none"/0, or device indices
    env: dict[str, str] = {}  # environment of every task
    # How many stages may run at the same time where the graph allows (evaluate beside prune, inference
    # beside export). None: one per GPU of a gpus list (each stage gets one of them), else 1; on Slurm,
    # as many as are ready (the scheduler queues them).
    jobs: int | None = Field(default=None, ge=1, le=1024)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, env: Any) -> Any:
        """Names a process environment can hold; a number is written as YAML reads it (OMP_NUM_THREADS: 4)."""
        if not isinstance(env, dict):
            return env  # pydantic names the type it expected
        out = {}
        for name, value in env.items():
            if not is_env_name(name):
                hint = " (YAML reads on, off, yes and no as true and false: quote it)" if isinstance(name, bool) else ""
                raise _key_error(str(name), value, f"{yamldoc.short(repr(name))} is not an environment variable "
                                                   f"name (not empty, no '=', no NUL){hint}")
            if isinstance(value, bool):
                raise _key_error(name, value, f"got {value}: YAML reads true, false, yes, no, on and off so; quote "
                                              "the value ('true')")
            if isinstance(value, (int, float)):
                value = str(value)
            if isinstance(value, str) and "\0" in value:
                raise _key_error(name, value, "a NUL character cannot be in an environment variable")
            out[name] = value
        return out

    @property
    def no_gpus(self) -> bool:
        """Whether gpus asks for none (0, "none" or an empty list)."""
        return self.gpus in (0, "none", [])

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: Any) -> Any:
        if isinstance(value, int) and value != 0:
            raise ValueError("an integer gpus must be 0 (no GPU); use 'all' or a list of device indices")
        if isinstance(value, list):
            if any(index < 0 for index in value):
                raise ValueError(f"GPU indices are 0 or more, not {value}")
            if len(set(value)) != len(value):
                raise ValueError(f"a GPU index is listed twice in {value}")
        return value


# Keys that moved from docker: to runner: (older configs keep working, with a note).
MOVED_TO_RUNNER = ("image", "deploy_image", "gpus", "env")


class TrackingConfig(_Model):
    """Experiment tracking from the host side: a backend is on when its section is there (`mlflow: {}`)."""

    mlflow: MlflowTracking | None = None
    clearml: ClearmlTracking | None = None


class SweepConfig(_Model):
    """`tltpipe sweep`: the keys to sweep and how to judge the points (the command line adds to params)."""

    params: dict[str, list[Any]] = {}  # config key -> values; several keys: every combination
    retrain: bool = True  # a prune sweep retrains (and evaluates) each pruned model
    to: str | None = None  # the last stage of each point; None: evaluate_retrain (prune keys) or evaluate
    max_drop: float = Field(default=0.02, ge=0, le=1)  # mAP the recommended model may lose against the baseline
    jobs: int | None = Field(default=None, ge=1, le=1024)  # points at once; None: one per GPU of a gpus list, else 1


class TuneParam(_Model):
    """One dimension of a search space: a float or int range (log: sampled on a log scale), or choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "TuneParam":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs choices: [...]")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a {self.type} parameter needs low < high")
        elif self.log and self.low <= 0:
            raise ValueError("log: true needs low > 0")
        elif self.type == "int" and not all(v is None or float(v).is_integer() for v in (self.low, self.high, self.step)):
            raise ValueError(f"an int parameter takes whole numbers for low, high and step, not "
                             f"{self.low:g}, {self.high:g}" + (f", {self.step:g}" if self.step is not None else ""))
        if self.log and self.step is not None:
            raise ValueError("log: true and step do not go together (Optuna samples on a log scale or in steps)")
        if self.type != "categorical" and self.choices is not None:
            raise ValueError(f"choices belong to a categorical parameter, not a {self.type} one")
        if self.type == "categorical" and (self.low, self.high, self.step) != (None, None, None):
            raise ValueError("a categorical parameter takes choices, not low, high or step")
        return self


class TuneConfig(_Model):
    """`tltpipe tune`: hyperparameter search with Optuna over config keys."""

    space: dict[str, TuneParam] = {}  # config key -> its range or choices
    trials: int = Field(default=20, ge=1)  # trials in the study, all told (a resumed study counts its earlier ones)
    jobs: int | None = Field(default=None, ge=1, le=1024)  # trials at once; None: one per GPU of a gpus list, else 1
    sampler: Literal["tpe", "random"] = "tpe"
    seed: UInt32 | None = 0  # Optuna's samplers take 0..2**32-1
    pruner: Literal["median", "hyperband", "none"] = "median"  # stops a trial whose validation mAP lags
    startup_trials: int = Field(default=5, ge=0)  # trials that finish before any is pruned
    warmup_epochs: int = Field(default=0, ge=0)  # epochs a trial trains before it may be pruned
    storage: Literal["sqlite", "journal"] = "sqlite"  # journal: a file several hosts share (NFS)
    to: Literal[SCORED_STAGES] = "evaluate"  # each trial's last stage; its mAP is what the study maximizes


# The specs spec_overrides can name, per framework (Network.framework).
SPEC_GROUPS_OF = {"tao": ("experiment", "train", "retrain", "tfrecords", "inference"),
                  "tao_pyt": ("experiment", "train", "evaluate", "export", "engine", "inference"), "pytorch_ssd": ()}
SPEC_GROUPS = tuple(dict.fromkeys(g for groups in SPEC_GROUPS_OF.values() for g in groups))

# Fields of TAO's TF1 training specs that tltpipe writes from a config key and reads back (the epoch count
# and checkpoint interval name the checkpoints it picks from; the input size goes to export, the engine and
# DeepStream; the backbone names the checkpoints): an override would leave the two disagreeing.
OWNED_SPEC_FIELDS = {
    "training_config.num_epochs": "epochs", "training_config.checkpoint_interval": "checkpoint_interval",
    "eval_config.validation_period_during_training": "validation_period",
    "evaluation_config.validation_period_during_training": "validation_period",
    "*_config.arch": "model.arch", "*_config.nlayers": "model.nlayers", "model_config.num_layers": "model.nlayers",
    "augmentation_config.output_width": "model.input_width", "augmentation_config.output_height": "model.input_height",
    "augmentation_config.preprocessing.output_image_width": "model.input_width",
    "augmentation_config.preprocessing.output_image_height": "model.input_height",
}
_TRAINING_SPEC_GROUPS = ("experiment", "train", "retrain")


def _tf1_override_problem(network: Any, toolkit: Any, group: str, dotted: Any, value: Any) -> str | None:
    """What the toolkit's spec schema says of one override, judged on its own (so the config's line is
    named now, not the rendered spec when a stage is planned); None when it fits or cannot be judged here."""
    from tlt_pipe.errors import SpecError
    from tlt_pipe.toolkits import get_toolkit

    if not isinstance(dotted, str) or not isinstance(toolkit, str):
        return None
    kind = {"tfrecords": "dataset_convert", "inference": f"{network.name}_inference"}.get(group, network.name)
    try:
        from tlt_pipe.specs import apply_overrides, message_class

        message = message_class(get_toolkit(toolkit).schema, kind)()
    except (ConfigError, KeyError, ValueError, TypeError):
        return None  # no such spec for this network or toolkit: rendering says so
    try:
        apply_overrides(message, {dotted: value}, source="")
    except SpecError as exc:
        return str(exc).removeprefix(f".{dotted}").removeprefix(": ").removeprefix(".") or None
    return None


def _owned_field(group: str, dotted: str, value: Any) -> tuple[str, str] | None:
    """(spec field, config key) when an override of a training spec sets a field the config owns."""
    from fnmatch import fnmatchcase

    if group not in _TRAINING_SPEC_GROUPS or not isinstance(dotted, str):
        return None
    leaves, todo = [], [(dotted, value)]
    while todo:
        path, item = todo.pop()
        leaves.append(path)
        if isinstance(item, Mapping):
            todo += [(f"{path}.{key}", inner) for key, inner in item.items()]
    for leaf in leaves:
        key = next((k for pattern, k in OWNED_SPEC_FIELDS.items() if fnmatchcase(leaf, pattern)), None)
        if key is not None:
            section = "retrain" if group == "retrain" else "train"
            return leaf, key if key.startswith("model.") else f"{section}.{key}"
    return None


class Config(_Model):
    network: Literal[NETWORKS]
    toolkit: str = DEFAULT_TOOLKIT
    name: str = Field(pattern=NAME_PATTERN)
    run_dir: Path | None = None
    dataset: DatasetConfig
    model: ModelConfig = ModelConfig()
    anchors: AnchorsConfig = AnchorsConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    prune: PruneConfig = PruneConfig()
    retrain: RetrainConfig = RetrainConfig()
    export: ExportConfig = ExportConfig()
    engine: EngineConfig = EngineConfig()
    inference: InferenceConfig = InferenceConfig()
    deepstream: DeepStreamConfig = DeepStreamConfig()
    pytorch_ssd: PytorchSsdConfig = Field(PytorchSsdConfig(), validate_default=True)
    docker: DockerConfig = DockerConfig()
    runner: RunnerConfig = Field(RunnerConfig(), validate_default=True)
    notes: list[str] = Field(default=[], exclude=True)  # deprecations met while loading, for the user
    tracking: TrackingConfig = TrackingConfig()
    sweep: SweepConfig = SweepConfig()
    tune: TuneConfig = TuneConfig()
    # Spec name (train, retrain, tfrecords, or experiment for both train and retrain) ->
    # dotted field path -> value; applied after rendering and checked against the spec schema.
    # TAO's PyTorch networks (YAML specs): experiment (every spec), train, evaluate, export, engine, inference.
    spec_overrides: dict[Literal[SPEC_GROUPS], dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """docker.image, docker.deploy_image, docker.gpus and docker.env are runner.* now."""
        if isinstance(data, dict) and "notes" in data:  # what loading tells the user, never a config key
            raise ValueError("notes: unknown key (check the spelling; `tltpipe init` writes every key)")
        if not isinstance(data, dict) or not isinstance(data.get("docker"), dict):
            return data
        docker = dict(data["docker"])
        moved = {key: docker.pop(key) for key in MOVED_TO_RUNNER if key in docker}
        if not moved:
            return data
        runner = data.get("runner") if isinstance(data.get("runner"), dict) else {}
        both = [key for key in moved if key in runner]
        if both:
            raise ValueError(f"docker.{both[0]} and runner.{both[0]} are both set; keep runner.{both[0]}")
        notes = [f"docker.{', docker.'.join(moved)}: these keys are runner.* now (runner: "
                 f"{{{', '.join(moved)}}}); the docker: spelling still works"]
        return {**data, "docker": docker, "runner": {**runner, **moved}, "notes": notes}

    @model_validator(mode="before")
    @classmethod
    def _network_defaults(cls, data: Any) -> Any:
        """An architecture or input size left out is the network's default; DetectNet_v2 (and the
        SSD family and YOLOv3 in TLT 2.0) train on images resized offline to their input, so
        dataset.resize defaults to it."""
        from tlt_pipe.networks import DEFAULT_NLAYERS, NETWORKS

        if not isinstance(data, dict) or data.get("network") not in NETWORKS:
            return data
        network = NETWORKS[data["network"]]
        if network.default_toolkit and "toolkit" not in data:
            data = {**data, "toolkit": network.default_toolkit}
        model = data.get("model")
        if model is None:
            model = {}
        if not isinstance(model, dict):
            return data
        model = dict(model)
        if "arch" not in model:
            model["arch"] = network.default_arch
            model.setdefault("nlayers", network.default_nlayers)
        elif "nlayers" not in model:
            model["nlayers"] = DEFAULT_NLAYERS.get(model["arch"]) if isinstance(model["arch"], str) else None
        model.setdefault("input_width", network.default_input[0])
        model.setdefault("input_height", network.default_input[1])
        data = {**data, "model": model}
        dataset = data.get("dataset")
        try:
            toolkit = normalize_version(data.get("toolkit", DEFAULT_TOOLKIT))
        except (TypeError, ValueError):
            toolkit = None
        resized = toolkit is not None and network.trains_on_resized(toolkit)
        if resized and isinstance(dataset, dict) and dataset.get("resize") is None:
            if isinstance(model["input_width"], int) and isinstance(model["input_height"], int):
                data["dataset"] = {**dataset, "resize": f"{model['input_width']}x{model['input_height']}"}
        return data

    @field_validator("spec_overrides")
    @classmethod
    def _spec_groups_of_network(cls, overrides: dict[str, Any], info) -> dict[str, Any]:
        from tlt_pipe.networks import NETWORKS

        network = NETWORKS.get(info.data.get("network"))
        allowed = SPEC_GROUPS_OF[network.framework] if network else SPEC_GROUPS
        for group in overrides:
            if group not in allowed:
                raise _key_error(group, None, f"{network.name} has no {group} spec; spec_overrides names "
                                              f"{', '.join(allowed) or 'no spec'}")
        if network is not None and "inference" in overrides and network.framework == "tao" \
                and network.inference_spec is None:
            raise _key_error("inference", None, f"{network.name}'s inference reads no spec of its own (DetectNet_v2's "
                                                "does): there is nothing here to override")
        if network is not None and network.framework == "tao":
            for group, values in overrides.items():
                for dotted, value in values.items():
                    owned = _owned_field(group, dotted, value)
                    if owned is not None:
                        raise _key_error((group, str(dotted)), value, f"{owned[0]} is written from {owned[1]}, which "
                                         "tltpipe also reads back; set that key instead")
                    problem = _tf1_override_problem(network, info.data.get("toolkit"), group, dotted, value)
                    if problem:
                        raise _key_error((group, str(dotted)), value, problem)
        if network is not None and network.framework == "tao_pyt":  # checked here to name the file's line
            from tlt_pipe.pyt_schema import check_overrides

            for group, values in overrides.items():
                for dotted, value in values.items():
                    problems = check_overrides(network.name, {dotted: value})
                    if problems:
                        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                        raise _key_error((group, str(dotted)), value,
                                         problems[0].removeprefix(f"{dotted}: ") + more)
        return overrides

    @field_validator("anchors")
    @classmethod
    def _anchors_split_into_groups(cls, anchors: AnchorsConfig, info) -> AnchorsConfig:
        from tlt_pipe.networks import NETWORKS

        network = NETWORKS.get(info.data.get("network"))
        groups = network.anchor_groups if network is not None else ()
        if groups and anchors.count and anchors.count % len(groups):
            raise _key_error("count", anchors.count, f"{anchors.count} anchors do not split into the {len(groups)} "
                             f"anchor shapes of {network.name} ({', '.join(groups)}); use a multiple of {len(groups)}")
        return anchors

    @field_validator("model")
    @classmethod
    def _model_fits_network(cls, model: ModelConfig, info) -> ModelConfig:
        from tlt_pipe.networks import NETWORKS

        network = NETWORKS.get(info.data.get("network"))
        if network is None:
            return model
        if model.arch not in network.archs:
            raise _key_error("arch", model.arch, f"{model.arch!r} is not an architecture {network.name} builds; "
                                                 f"choose one of {', '.join(network.archs)}")
        step = network.input_multiple
        for name in ("input_width", "input_height"):
            if getattr(model, name) % step:
                raise ValueError(f"{name} {getattr(model, name)} is not a multiple of {step}, which "
                                 f"{network.name} needs")
        dataset = info.data.get("dataset")
        wanted = f"{model.input_width}x{model.input_height}"
        toolkit = info.data.get("toolkit")
        if toolkit and network.trains_on_resized(toolkit) and dataset is not None and dataset.resize != wanted:
            where = "" if network.always_resized else f" in toolkit {toolkit}"
            raise ValueError(f"{network.name}{where} trains on images of its input size: dataset.resize is "
                             f"{dataset.resize}, the model input is {wanted}; set dataset.resize: {wanted} "
                             "or leave it out")
        return model

    @field_validator("pytorch_ssd")
    @classmethod
    def _pytorch_ssd_checkout(cls, value: PytorchSsdConfig, info) -> PytorchSsdConfig:
        """ssd_mobilenet runs the scripts of a pytorch-ssd checkout, which the config names."""
        if info.data.get("network") == "ssd_mobilenet" and value.repo is None:
            raise ValueError("repo: ssd_mobilenet needs your pytorch-ssd checkout (the folder with train_ssd.py; "
                             "jetson-inference's python/training/detection/ssd)")
        return value

    @field_validator("runner")
    @classmethod
    def _pytorch_image(cls, value: RunnerConfig, info) -> RunnerConfig:
        if info.data.get("network") != "ssd_mobilenet":
            return value
        if value.kind != "local" and not value.image:
            raise ValueError("image: ssd_mobilenet in a container needs an image with PyTorch and the checkout's "
                             "requirements (or runner.kind: local)")
        pytorch = info.data.get("pytorch_ssd")
        if pytorch is not None and pytorch.export_device == "cuda" and value.no_gpus:
            raise ValueError(f"gpus: {value.gpus!r}, but pytorch_ssd.export_device is cuda: onnx_export.py needs a "
                             "CUDA GPU; set export_device: auto (or cpu) to export on the CPU")
        return value

    @field_validator("train", "retrain")
    @classmethod
    def _validation_schedule(cls, value: TrainConfig | RetrainConfig, info) -> TrainConfig | RetrainConfig:
        """YOLO on TAO 3.x and later validates at every checkpoint: its eval_config has no period."""
        from tlt_pipe.networks import NETWORKS

        network = NETWORKS.get(info.data.get("network"))
        toolkit = info.data.get("toolkit")
        if network is None or toolkit is None or not network.validation_at_checkpoints(toolkit):
            return value
        interval = value.checkpoint_interval or getattr(info.data.get("train"), "checkpoint_interval", None)
        if "validation_period" in value.model_fields_set and value.validation_period not in (None, interval):
            raise ValueError(f"validation_period: {network.name} on TAO {toolkit} validates at every checkpoint "
                             "(its eval_config has no validation period); set checkpoint_interval instead")
        return value

    @field_validator("toolkit", mode="before")
    @classmethod
    def _toolkit(cls, value: Any, info) -> str:
        from tlt_pipe.networks import NETWORKS

        version = normalize_version(value)
        network = NETWORKS.get(info.data.get("network"))
        if network is not None and version not in network.toolkits:  # here, to name the file's line
            raise ValueError(f"{network.name} is not available in toolkit {version}; it ships in: "
                             f"{', '.join(sorted(network.toolkits))}")
        return version

    @model_validator(mode="after")
    def _engine_batch(self) -> "Config":
        if self.engine.opt_batch_size and self.engine.opt_batch_size > self.engine.max_batch_size:
            raise ValueError("engine.opt_batch_size must not exceed engine.max_batch_size")
        return self

    def default_run_dir(self) -> Path:
        """Where a run writes unless told otherwise: run_dir from the config, else runs/<name>."""
        return self.run_dir or Path(DEFAULT_RUNS) / self.name

    def default_sweep_dir(self, kind: str = "sweep") -> Path:
        """Where `tltpipe sweep` (kind "tune": `tltpipe tune`) writes unless told otherwise: beside the run
        directory, <run dir>-sweep (-tune)."""
        run_dir = self.default_run_dir()
        return run_dir.with_name(f"{run_dir.name}-{kind}")

    @property
    def retrain_resolved(self) -> TrainConfig:
        return self.retrain.resolve(self.train)


# --- loading --------------------------------------------------------------------------------

_PATH_FIELDS = (("dataset", "path"), ("dataset", "names"), ("model", "pretrained"), ("inference", "images"),
                ("pytorch_ssd", "repo"), ("pytorch_ssd", "pretrained"), ("run_dir",))


def load_config(path: Path, *, network: str | None = None, sets: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, validate and resolve a config file. Relative paths are relative to the file's folder.

    sets are command-line overrides `dotted.key=value` (the value is read as YAML)."""
    path = Path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, source=str(path), base_dir=path.parent.resolve(), network=network, sets=sets)


def parse_config(text: str, *, source: str, base_dir: Path, network: str | None = None,
                 sets: list[str] | tuple[str, ...] = ()) -> Config:
    node, data = yamldoc.read(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config must be a mapping of keys (network, name, dataset, ...)")
    if network is not None:
        if data.get("network", network) != network:
            line = _line_of(node, ("network",))
            raise ConfigError(f"{source}:{line}: network: the config says {data['network']!r} but the command asks for {network!r}")
        data.setdefault("network", network)
    set_keys = _apply_sets(data, sets)
    if network is not None and data.get("network") != network:
        raise ConfigError(f"--set {yamldoc.short(set_keys.get(('network',), 'network'))}: the network is the "
                          f"command's ({network!r} here); run `tltpipe run NETWORK` for another")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, node, source, set_keys)) from None
    return _resolve_paths(config, base_dir)


def with_values(config: Config, values: Mapping[str, Any], *, source: str) -> Config:
    """The config with dotted keys set (`prune.threshold` -> 0.3), checked as a config file is; a bad
    key or value is a ConfigError naming it and the source. For TAO's PyTorch networks a key of their
    experiment spec that is no config key (`train.optim.lr`) goes to spec_overrides.experiment."""
    data = config.model_dump(mode="json", exclude={"notes"}, exclude_unset=True)  # as the user wrote it
    values = dict(values)
    routed: dict[tuple[str, ...], str] = {}
    for key, value in _spec_values(config.network, values, source).items():
        del values[key]
        experiment = data.setdefault("spec_overrides", {}).setdefault("experiment", {})
        experiment[key] = value
        routed[("spec_overrides", "experiment", key)] = f"{key}={value}"
    sets = {tuple(key.split(".")): f"{key}={value}" for key, value in values.items()}
    for parts, item in sets.items():
        target = data
        for part in parts[:-1]:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: {item}: {part} is not a mapping")
            target = child
        target[parts[-1]] = values[".".join(parts)]
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        message = _format_validation_error(exc, None, source, {**sets, **routed})
        raise ConfigError(message.replace("--set ", f"{source}: ", 1)) from None


def is_config_key(key: str) -> bool:
    """Whether a dotted key names a field of the config (or lies inside one of its free-form mappings)."""
    model: type[BaseModel] = Config
    for part in key.split("."):
        field = model.model_fields.get(part)
        if field is None:
            return False
        inner = field.annotation
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return True
        model = inner
    return True


def _spec_values(network: str, values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The values whose keys are keys of the network's YAML experiment spec, not of the config (a key
    that is neither is a ConfigError with the spec's nearest key)."""
    from tlt_pipe.networks import NETWORKS

    if network not in NETWORKS or NETWORKS[network].framework != "tao_pyt":
        return {}
    from tlt_pipe.pyt_schema import check_overrides

    spec = {k: v for k, v in values.items() if not is_config_key(k)}
    unknown = [p for p in check_overrides(network, spec) if "has no such key" in p]
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]} (nor is it a config key)")
    return spec


def _resolve_paths(config: Config, base_dir: Path) -> Config:
    updates: dict[str, Any] = {}
    for field_path in _PATH_FIELDS:
        if len(field_path) == 1:
            value = getattr(config, field_path[0])
            if value is not None and not value.is_absolute():
                updates[field_path[0]] = value  # run_dir stays relative to the working directory
            continue
        section, key = field_path
        value = getattr(getattr(config, section), key)
        if value is not None:
            try:
                resolved = value.expanduser()
            except RuntimeError:  # ~name of a user this machine does not have
                raise ConfigError(f"{section}.{key}: {yamldoc.short(value)}: no home folder for that ~user") from None
            if not resolved.is_absolute():
                resolved = (base_dir / resolved).resolve()
            sub = updates.get(section, getattr(config, section))
            updates[section] = sub.model_copy(update={key: resolved})
    return config.model_copy(update=updates)


def _apply_sets(data: dict, sets: list[str] | tuple[str, ...]) -> dict[tuple[str, ...], str]:
    """Apply `a.b.c=value` overrides in place; returns {key path: the option as written}. For TAO's
    PyTorch networks a key of their experiment spec that is no config key (`train.optim.lr`) goes to
    spec_overrides.experiment, as in a sweep."""
    applied: dict[tuple[str, ...], str] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {yamldoc.short(item)}: expected KEY=VALUE, e.g. runner.gpus=0")
        value = yamldoc.read(raw, f"--set {yamldoc.short(item)}")[1] if raw.strip() else None
        if _set_in_spec(data, key.strip(), value, item):
            applied[("spec_overrides", "experiment", key.strip())] = item
            continue
        parts = tuple(key.strip().split("."))
        target = data
        for part in parts[:-1]:
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {yamldoc.short(item)}: {part} is not a mapping")
            target = child
        target[parts[-1]] = value
        applied[parts] = item
    return applied


def _set_in_spec(data: dict, key: str, value: Any, item: str) -> bool:
    """Whether `--set key=value` is for the network's experiment spec: a TAO PyTorch network, a dotted
    key that is no config key. It is then checked against the spec (a ConfigError naming the option)
    and written into spec_overrides.experiment."""
    from tlt_pipe.networks import NETWORKS

    network = data.get("network")
    if (not isinstance(network, str) or network not in NETWORKS or NETWORKS[network].framework != "tao_pyt"
            or not all(key.split(".")) or is_config_key(key)):
        return False
    overrides = data.setdefault("spec_overrides", {})
    if not isinstance(overrides, dict) or not isinstance(overrides.setdefault("experiment", {}), dict):
        return False  # the file's own spec_overrides are wrong: validation names them
    from tlt_pipe.pyt_schema import check_overrides

    problems = check_overrides(network, {key: value})
    if problems:
        nor = " (nor is it a config key)" if "has no such key" in problems[0] else ""
        raise ConfigError(f"--set {yamldoc.short(item)}: {problems[0]}{nor}")
    overrides["experiment"][key] = value
    return True


def _format_validation_error(exc: ValidationError, node: yaml.Node | None, source: str,
                             set_keys: dict[tuple[str, ...], str] | None = None) -> str:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    field = ".".join(str(p) for p in loc) or "(top level)"
    in_file = _located(node, loc)[1]  # a key only a --set gave (spec_overrides.nosuchstage) is that --set's
    where = next((f"--set {yamldoc.short(opt)}" for keys, opt in (set_keys or {}).items() if loc[:len(keys)] == keys
                  or ((err["type"] == "extra_forbidden" or not in_file) and keys[:len(loc)] == loc)), None)
    where = where or f"{source}:{_line_of(node, loc)}"
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; `tltpipe init` writes every key)"
    elif err["type"] == "missing":
        message = "required key is missing"
    elif err["type"] == "literal_error":
        message = f"{message}, got {err.get('input')!r}"
    elif err["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {field}: {message}{more}"


def _line_of(node: yaml.Node | None, loc: tuple) -> int:
    """The 1-based line of the deepest YAML node along loc (the parent's line when a key is missing)."""
    return _located(node, loc)[0]


def _located(node: yaml.Node | None, loc: tuple) -> tuple[int, bool]:
    """(_line_of, whether the file holds the whole of loc)."""
    if node is None:
        return 1, False
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line, False
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line, False
    return line, True


def dump_resolved(config: Config) -> str:
    """The resolved config as YAML for the run directory. Secrets are never in a Config."""
    data = config.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
