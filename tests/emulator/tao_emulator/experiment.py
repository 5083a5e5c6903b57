"""The Hydra-style entrypoint of TAO's PyTorch detectors (RT-DETR, DINO) and of their TensorRT tasks.

    NET TASK -e SPEC.yaml [key=value ...]

The first positional is the task (argparse: an unknown one is a usage error, exit 2). `-e` must name
an existing file (else one line and exit 1). Every further argument is a Hydra override `a.b.c=value`
(value read as YAML; `+key=value` adds, `++key=value` adds or overrides, `~key` deletes), applied
after the spec. The spec and the overrides are merged into NVIDIA's own ExperimentConfig dataclass
(nvidia_tao_core.config.<net>.default_config, see nvidia.py) with OmegaConf, which refuses unknown
keys and values of the wrong type, naming the key; a mandatory value (`???`) fails when a task reads
it. Results go to `<task>.results_dir`, else `<results_dir>/<task>` (TAO Deploy names the folders of
its evaluate and inference `trt_evaluate` and `trt_inference`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys

from . import catalog, nvidia, runtime
from .main import Ctx
from .runtime import TaskFailed, say

# TAO Deploy's results sub-folders when only the top-level results_dir is set.
DEPLOY_RESULT_DIRS = {"gen_trt_engine": "gen_trt_engine", "evaluate": "trt_evaluate",
                      "inference": "trt_inference"}


class ConfigError(TaskFailed):
    """The experiment config cannot be composed (Hydra fails before the task starts)."""


def omegaconf():
    """The OmegaConf module (python3-omegaconf in the images)."""
    import omegaconf as module  # noqa: PLC0415 - only the PyTorch networks need it

    return module


def schema(net: str):
    """NVIDIA's ExperimentConfig dataclass of the network."""
    nvidia.tao_core_on_path()
    return importlib.import_module(f"nvidia_tao_core.config.{net}.default_config").ExperimentConfig


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# overrides


def parse_override(text: str) -> tuple[str, str, object]:
    """`key=value` -> (kind, key, value); kind is "set", "add" (+), "force" (++) or "delete" (~).
    The value is read as YAML (an empty value is the empty string, as in Hydra)."""
    import yaml  # noqa: PLC0415

    kind = "set"
    body = text
    if body.startswith("++"):
        kind, body = "force", body[2:]
    elif body.startswith("+"):
        kind, body = "add", body[1:]
    elif body.startswith("~"):
        kind, body = "delete", body[1:]
    key, sep, raw = body.partition("=")
    key = key.strip()
    if not key or not all(part and part[0] != "-" and all(c.isalnum() or c in "_-" for c in part)
                          for part in key.split(".")) or (not sep and kind != "delete"):
        raise ConfigError(f"hydra.errors.OverrideParseException: Error parsing override '{text}': "
                          "expected key=value (a dotted key such as train.num_epochs=10)")
    if kind == "delete":
        return kind, key, None
    if raw == "":
        return kind, key, ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"hydra.errors.OverrideParseException: Error parsing override '{text}': "
                          f"{str(exc).splitlines()[0]}") from None
    return kind, key, value


def apply_override(cfg, text: str) -> None:
    """Apply one override to the composed config the way Hydra does (struct mode: a plain override
    cannot add a key)."""
    oc = omegaconf()
    kind, key, value = parse_override(text)
    present = oc.OmegaConf.select(cfg, key, throw_on_missing=False) is not None
    try:
        if kind == "set":
            try:
                oc.OmegaConf.update(cfg, key, value, merge=True)
            except (oc.errors.ConfigAttributeError, oc.errors.ConfigKeyError) as exc:
                raise ConfigError(f"Could not override '{key}'.\nTo append to your config use "
                                  f"+{text}\n{_describe(exc)}") from None
        elif kind == "add" and present and not isinstance(value, (dict, list)):
            raise ConfigError(f"Could not append to config. An item is already at '{key}'.")
        elif kind == "delete":
            parent, _, leaf = key.rpartition(".")
            node = oc.OmegaConf.select(cfg, parent) if parent else cfg
            if node is None or leaf not in node:
                raise ConfigError(f"Could not delete from config. '{key}' does not exist.")
            with oc.open_dict(cfg):
                del node[leaf]
        else:
            with oc.open_dict(cfg):
                oc.OmegaConf.update(cfg, key, value, merge=True)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - OmegaConf's validation errors, whatever their class
        raise ConfigError(f"Error merging override {text}\n{_describe(exc)}") from None


# ---------------------------------------------------------------------------------------------
# composing the experiment config


def failing_key(base, loaded, prefix: str = "") -> str:
    """The deepest dotted key of `loaded` whose merge into `base` fails (some OmegaConf errors, such
    as a list given for a mapping, do not name it)."""
    oc = omegaconf()
    if not isinstance(loaded, oc.DictConfig):
        return prefix.rstrip(".") or "<root>"

    def merges(path: str, value) -> bool:
        partial = oc.OmegaConf.create({})
        oc.OmegaConf.update(partial, path, value, merge=False)
        try:
            oc.OmegaConf.merge(base, partial)
        except Exception:  # noqa: BLE001
            return False
        return True

    for key in loaded.keys():
        path = f"{prefix}{key}"
        value = loaded[key]
        if not merges(path, value):
            if isinstance(value, oc.DictConfig) and merges(path, {}):
                return failing_key(base, value, path + ".")
            return path
    return prefix.rstrip(".")


def compose(net: str, spec_path: str, overrides: list[str]):
    """Schema <- spec YAML <- overrides, as TAO's hydra_runner composes them."""
    oc = omegaconf()
    base = oc.OmegaConf.structured(schema(net))
    try:
        loaded = oc.OmegaConf.load(spec_path)
    except Exception as exc:  # noqa: BLE001 - YAML syntax errors
        raise ConfigError(f"Error loading '{spec_path}': {_describe(exc)}") from None
    if loaded is None or (isinstance(loaded, oc.DictConfig) and not loaded):
        loaded = oc.OmegaConf.create({})
    try:
        cfg = oc.OmegaConf.merge(base, loaded)
    except Exception as exc:  # noqa: BLE001
        where = "" if "full_key:" in str(exc) else f"\n    full_key: {failing_key(base, loaded)}"
        raise ConfigError(f"Error merging '{os.path.basename(spec_path)}' with schema\n"
                          f"{_describe(exc)}{where}") from None
    oc.OmegaConf.set_struct(cfg, True)
    for text in overrides:
        apply_override(cfg, text)
    return cfg


def get(cfg, key: str):
    """The value at a dotted key; a mandatory value that is unset fails naming the key."""
    oc = omegaconf()
    try:
        return oc.OmegaConf.select(cfg, key, throw_on_missing=True)
    except oc.errors.MissingMandatoryValue as exc:
        raise TaskFailed(_describe(exc)) from None


def require(cfg, key: str, what: str = ""):
    """A value the task needs: unset (`???`) or null fails naming the key."""
    value = get(cfg, key)
    if value is None or value == "":
        hint = f" ({what})" if what else ""
        raise TaskFailed(f"ValueError: {key} is not set{hint}")
    return value


def valid_options(node, field: str) -> list[str] | None:
    """The `valid_options` NVIDIA's dataclass declares for a field of a config node, if any."""
    oc = omegaconf()
    kind = oc.OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(kind):
        return None
    for f in dataclasses.fields(kind):
        if f.name == field:
            options = f.metadata.get("valid_options") or ""
            return [o.strip() for o in options.split(",") if o.strip()] or None
    return None


def check_choice(cfg, key: str, *, lower: bool = False) -> str:
    """A value the task's code dispatches on must be one of the dataclass's valid_options."""
    parent, _, field = key.rpartition(".")
    value = get(cfg, key)
    options = valid_options(get(cfg, parent) if parent else cfg, field)
    if options is not None:
        allowed = [o.lower() for o in options] if lower else options
        if (str(value).lower() if lower else value) not in allowed:
            raise TaskFailed(f"NotImplementedError: {key}={value} is not supported; "
                             f"supported: {', '.join(options)}")
    return value


def results_dir(cfg, task: str, role: str) -> str:
    """`<task>.results_dir`, else `<results_dir>/<task folder>`; neither set is an error."""
    own = get(cfg, f"{task}.results_dir")
    if own:
        return own
    top = get(cfg, "results_dir")
    if not top:
        raise TaskFailed("ValueError: You need to set at least one of following fields: "
                         f"results_dir, {task}.results_dir")
    sub = DEPLOY_RESULT_DIRS[task] if role == "deploy" else task
    return os.path.join(top, sub)


# ---------------------------------------------------------------------------------------------
# the entrypoint


class Invocation(Ctx):
    """What a task needs to know: the invocation (main.Ctx, with the composed config as its args)
    and the network's title."""

    def __init__(self, net: str, task: str, cfg, version: str, role: str):
        super().__init__(version, role, net, task, cfg, f"{net} {task}")
        self.cfg = cfg
        self.title = catalog.PYT_TITLES[net]

    @property
    def key(self) -> str | None:
        return get(self.cfg, "encryption_key")


def parse_argv(net: str, argv: list[str], version: str, role: str) -> tuple[str, str, list[str]]:
    """-> (task, spec path, overrides); usage errors exit 2, a missing spec exits 1."""
    parser = argparse.ArgumentParser(prog=net, description=f"TAO entrypoint for "
                                                           f"{catalog.PYT_TITLES[net]}")
    parser.add_argument("subtask", choices=list(catalog.subcommands(net, version, role)),
                        help="Subtask for a given task/model.")
    parser.add_argument("-e", "--experiment_spec_file", default=None,
                        help="Path to the experiment spec file.")
    args, overrides = parser.parse_known_args(argv)
    if args.experiment_spec_file is None:
        say(f"ERROR: The subtask `{args.subtask}` requires the following argument: "
            "-e/--experiment_spec_file")
        sys.exit(1)
    if not os.path.isfile(args.experiment_spec_file):
        say(f"ERROR: The indicated experiment spec file `{args.experiment_spec_file}` doesn't exist!")
        sys.exit(1)
    return args.subtask, args.experiment_spec_file, overrides


def entry(net: str, argv: list[str], version: str, role: str) -> None:
    from . import detr  # noqa: PLC0415

    task, spec_path, overrides = parse_argv(net, argv, version, role)
    state = {}

    def body():
        state["inv"] = inv = Invocation(net, task, compose(net, spec_path, overrides), version, role)
        runtime.print_key(inv.key)
        fail_sub = os.environ.get("TAO_EMU_FAIL_SUBCOMMAND", "").strip()
        if fail_sub and fail_sub == task:
            raise TaskFailed(f"RuntimeError: injected failure in {task} (TAO_EMU_FAIL_SUBCOMMAND)")
        detr.lookup(role, task)(inv)

    status = _LazyStatus(state)
    interrupted = f"{task.capitalize()} was interrupted"
    sys.exit(runtime.run_task(body, status=status, interrupted_message=interrupted,
                              fail_code=runtime.DEPLOY_EXIT_FAIL))


class _LazyStatus:
    """The status log of the invocation once it exists (a config error has none)."""

    def __init__(self, state: dict):
        self.state = state

    def write(self, *args, **kwargs) -> None:
        inv = self.state.get("inv")
        if inv is not None:
            inv.status.write(*args, **kwargs)
