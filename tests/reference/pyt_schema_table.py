"""tltpipe's key tables for TAO's PyTorch networks (RT-DETR, DINO), generated from NVIDIA's experiment configs.

    python -m tests.reference.pyt_schema_table          # rewrite src/tlt_pipe/schemas/pyt-*.json
    python -m tests.reference.pyt_schema_table --check  # exit 1 when a committed table differs

TAO loads a PyTorch network's YAML spec by merging it into the network's ExperimentConfig dataclass with
OmegaConf. The dataclasses live in NVIDIA's nvidia-tao-core wheel (proprietary licence): this module reads
them from the reference cache at test time and writes down facts only, one line per key path: its kind,
whether it may be null, and what a list or mapping holds. tlt_pipe.pyt_schema checks specs against those
tables without OmegaConf; merge_problems is the reference it is held to
(tests/conformance/test_pyt_schema_conformance.py).

Table entry: {"kind": K} with K one of section, int, float, bool, str, enum, list, dict, any; "null": true
when the key may be null; "of": the entry of a list's items or a mapping's values; "enum" and "values"
([[name, value], ...]) for an enum. The keys of a section held in a list are listed under "<path>[].key".
The generator refuses any shape tltpipe's check has not been proven on, rather than writing a table the
check would misread.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import sys
import typing
from functools import cache
from pathlib import Path
from typing import Any, Mapping

from tests.reference import wheels
from tlt_pipe import pyt_schema

OUT = Path(__file__).resolve().parents[2] / "src" / "tlt_pipe" / "schemas"
SCALARS = {int: "int", float: "float", bool: "bool", str: "str"}


class UnsupportedShape(TypeError):
    """A field type the table format (and tltpipe's check) does not cover yet."""


def _refuse(path: str, what: str) -> UnsupportedShape:
    return UnsupportedShape(f"{path}: {what}; extend tlt_pipe.pyt_schema and this generator (and prove it "
                            "in tests/conformance/test_pyt_schema_conformance.py) before regenerating")


def config_module(network: str) -> str:
    return f"nvidia_tao_core.config.{network}.default_config"


@cache
def experiment_config(network: str) -> type:
    """NVIDIA's ExperimentConfig dataclass of the network, imported from the unpacked wheel."""
    root = str(wheels.extracted(wheels.TAO_CORE, "nvidia_tao_core/config/"))
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(config_module(network)).ExperimentConfig


def _optional(tp: Any) -> tuple[bool, Any]:
    if typing.get_origin(tp) is typing.Union:
        members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(members) == 1:
            return True, members[0]
    return False, tp


def _entry(tp: Any, path: str, keys: dict[str, dict]) -> dict:
    """The table entry of a value of type tp found at path; a section's keys go into keys."""
    null, tp = _optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    entry: dict[str, Any] = {"null": True} if null else {}
    if tp is Any:
        entry.update(kind="any", null=True)  # Any takes null too
    elif tp in SCALARS:
        entry["kind"] = SCALARS[tp]
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [[name, member.value] for name, member in tp.__members__.items()]
        if not all(type(value) in (int, str) for _, value in values):
            raise _refuse(path, f"enum {tp.__name__} has values that are neither int nor str")
        entry.update(kind="enum", enum=tp.__name__, values=values)
    elif dataclasses.is_dataclass(tp):
        entry["kind"] = "section"
        _section(tp, path, keys)
    elif origin in (list, typing.List) or tp is list:
        entry.update(kind="list", of=_item(args[0] if args else Any, path + "[]", keys))
    elif origin in (dict, typing.Dict) or tp is dict:
        if args and args[0] is not str:
            raise _refuse(path, f"a mapping with {args[0]} keys")
        entry.update(kind="dict", of=_value_of_dict(args[1] if args else Any, path + "{}", keys))
    else:
        raise _refuse(path, f"type {tp!r}")
    return entry


def _item(tp: Any, path: str, keys: dict[str, dict]) -> dict:
    entry = _entry(tp, path, keys)
    if entry["kind"] == "list" or (entry.get("null") and entry["kind"] != "any"):
        raise _refuse(path, "a list of optional values or of lists")
    if entry["kind"] == "dict" and entry["of"]["kind"] == "section":
        raise _refuse(path, "a list of mappings of sections")
    return entry


def _value_of_dict(tp: Any, path: str, keys: dict[str, dict]) -> dict:
    entry = _entry(tp, path, keys)
    if entry["kind"] in ("section", "list", "dict") or (entry.get("null") and entry["kind"] != "any"):
        raise _refuse(path, "a mapping of optional values or of containers")
    return entry


def _section(cls: type, path: str, keys: dict[str, dict]) -> None:
    """Every key of the dataclass cls, under path (root: ""). Its mappings must start empty (or null): a
    spec's entries are then all new ones, whose merge rules are the ones tltpipe's check follows."""
    from omegaconf import OmegaConf

    hints = typing.get_type_hints(cls)
    defaults = OmegaConf.structured(cls)
    plain = OmegaConf.to_container(defaults, resolve=False)
    for field in dataclasses.fields(cls):
        where = f"{path}.{field.name}" if path else field.name
        entry = keys[where] = _entry(hints[field.name], where, keys)
        if entry["kind"] == "dict" and plain[field.name] not in (None, {}, "???"):
            raise _refuse(where, "a mapping whose default holds entries")
        if entry["kind"] == "section" and plain[field.name] is not None:
            _, declared = _optional(hints[field.name])
            if OmegaConf.get_type(defaults, field.name) is not declared:
                raise _refuse(where, "a section whose default is a subclass of its declared type")


def key_table(config: type) -> dict[str, dict]:
    """{key path: entry} of an experiment config dataclass, sorted by path."""
    keys: dict[str, dict] = {}
    _section(config, "", keys)
    return dict(sorted(keys.items()))


def render(network: str) -> str:
    """The committed text of the network's table: sorted, one key per line."""
    source = f"{wheels.TAO_CORE.project}=={wheels.TAO_CORE.version} {config_module(network)}.ExperimentConfig"
    keys = key_table(experiment_config(network))
    lines = [f"  {json.dumps(path)}: {json.dumps(entry, sort_keys=True)}" for path, entry in keys.items()]
    return ("{\n"
            f' "network": {json.dumps(network)},\n'
            f' "derived_from": {json.dumps(source)},\n'
            ' "keys": {\n' + ",\n".join(lines) + "\n }\n}\n")


def path_for(network: str) -> Path:
    return OUT / f"pyt-{network}.json"


@cache
def _defaults(network: str):
    from omegaconf import OmegaConf

    return OmegaConf.structured(experiment_config(network))


def merge_problems(network: str, spec: Mapping) -> list[str]:
    """What TAO's loader says of the spec: OmegaConf merging it into the network's ExperimentConfig.
    Empty when accepted; otherwise the one error the merge stops at."""
    return structured_merge_problems(_defaults(network), spec)


def structured_merge_problems(defaults, spec: Mapping) -> list[str]:
    """The error (ConfigKeyError, ValidationError, GrammarParseError, ..., or the TypeError and OverflowError
    OmegaConf lets through) of merging spec into a structured config, or [] when it merges."""
    from omegaconf import OmegaConf

    try:
        OmegaConf.merge(defaults, spec)
    except Exception as exc:  # noqa: BLE001 - any failure of the merge is a refusal
        return [f"{type(exc).__name__}: {exc}"]
    return []


def main(argv: list[str]) -> int:
    stale = []
    try:
        for network in pyt_schema.known_networks():
            target, text = path_for(network), render(network)
            if "--check" not in argv:
                target.write_text(text, encoding="utf-8")
                print(target)
            elif not target.is_file() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
    except wheels.ReferenceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for target in stale:
        print(f"out of date: {target} (run python -m tests.reference.pyt_schema_table)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
