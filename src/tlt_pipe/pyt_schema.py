"""Pre-flight check of the YAML experiment specs of TAO's PyTorch networks (RT-DETR, DINO).

TAO loads such a spec by merging it into the network's experiment config with OmegaConf; a key the config
lacks or a value its field cannot take stops the container at start. tltpipe checks the same before any
container starts, from its own key tables (schemas/pyt-<network>.json): every key path, its kind (section,
int, float, bool, str, enum, list, dict, any), whether it may be null, and what a list or mapping holds.
The tables are facts generated from NVIDIA's config classes by tests/reference/pyt_schema_table.py; the
conformance suite holds them to those classes and proves that check_spec accepts exactly the specs the
merge accepts. OmegaConf is not needed here.

What a merge accepts, as this module applies it (value by value, for the YAML types a spec holds):
- "???" (a value left to fill in) and any string holding "${" (an interpolation, resolved later) go
  anywhere; an interpolation must close, "${" ... "}".
- null goes where the key may be null.
- int: an integer, or a string int() reads ("3", " 3 ", "3_000"); not a float (3.0), not true/false.
- float: an integer, a float, or a string float() reads ("1e-4", "inf"); not true/false.
- bool: true/false, any integer, a string int() reads, or yes/y/on/true/no/n/off/false in any case.
- str: any scalar but binary data (numbers and booleans become strings).
- enum: a member's name (optionally "Enum.NAME"), or a member's value; not a float or a boolean.
- a string of backslashes ending in ??? ("\\???") is a literal string: only str and any take it.
- section: a mapping of its own keys only. list: a list (it replaces the default). dict: a mapping with
  string keys. any: anything (bar the types below).
- A new entry of a mapping or a list whose values are scalars may be a whole list or mapping: the merge
  stores it without looking inside. A mapping that is itself an item of a list is built afresh, and its
  values must convert.
- Anywhere: keys are strings, numbers, booleans or binary data (in a section, only its key names), and
  values are strings, numbers, booleans, binary data, null, lists and mappings (a YAML date is not).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

NETWORKS = {"dino": "DINO", "rtdetr": "RT-DETR"}

_SCALAR_TYPES = (str, int, float, bool, bytes)
_KEY_TYPES = (str, int, float, bytes, Enum)
_TRUE = frozenset({"yes", "y", "on", "true"})
_FALSE = frozenset({"no", "n", "off", "false"})
_SEGMENT = re.compile(r"(.+?)((?:\[\]|\{\})*)")


@dataclass(eq=False)
class Kind:
    """What one key (or one item of a list or mapping) holds."""

    kind: str
    null: bool = False
    of: Kind | None = None
    enum: str = ""
    values: tuple[tuple[str, Any], ...] = ()
    keys: dict[str, Kind] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Kind:
        return cls(kind=entry["kind"], null=bool(entry.get("null", False)),
                   of=cls.from_entry(entry["of"]) if "of" in entry else None, enum=entry.get("enum", ""),
                   values=tuple((name, value) for name, value in entry.get("values", ())))


def known_networks() -> tuple[str, ...]:
    """The networks with a key table, by tltpipe name."""
    return tuple(NETWORKS)


def check_spec(network: str, spec: Mapping) -> list[str]:
    """The problems TAO's loader would stop at in the network's experiment spec, each naming its key path."""
    return table(network).check(spec)


def check_overrides(network: str, overrides: Mapping[str, Any]) -> list[str]:
    """The problems of dotted-path overrides ({"train.optim.lr": 1e-4}), each judged as its own spec."""
    return table(network).check_overrides(overrides)


@cache
def table(network: str) -> SpecTable:
    """The network's key table, read from tltpipe's package data once."""
    if network not in NETWORKS:
        raise ValueError(f"tltpipe has no spec table for {network!r}; it has: {', '.join(known_networks())}")
    text = resources.files("tlt_pipe").joinpath("schemas", f"pyt-{network}.json").read_text(encoding="utf-8")
    return SpecTable(json.loads(text)["keys"], NETWORKS[network])


class SpecTable:
    """A network's keys as a tree, built from {key path: entry} (a section held in a list keeps its keys
    under "<path>[].<key>")."""

    def __init__(self, keys: Mapping[str, Mapping[str, Any]], title: str):
        self.title = title
        self.root = Kind("section")
        self._paths_by_name: dict[str, list[str]] = {}
        for path, entry in sorted(keys.items()):  # a section sorts before its keys
            *parents, name = path.split(".")
            section = self.root
            for part in parents:
                base, suffixes = _SEGMENT.fullmatch(part).groups()
                section = section.keys[base]
                for _ in range(len(suffixes) // 2):
                    section = section.of
            section.keys[name] = Kind.from_entry(entry)
            self._paths_by_name.setdefault(name, []).append(path)

    def check(self, spec: Mapping) -> list[str]:
        walk = _Walk(self)
        if isinstance(spec, Mapping):
            walk.section(self.root, spec, "")
        else:
            walk.problems.append(f"the spec is {_got(spec)}; {self.title}'s spec is a mapping of sections")
        return walk.problems

    def check_overrides(self, overrides: Mapping[str, Any]) -> list[str]:
        problems = []
        for dotted, value in overrides.items():
            parts = dotted.split(".") if isinstance(dotted, str) else [""]
            if not all(parts):
                problems.append(f"{dotted!r}: an override names a key by its dotted path, such as train.optim.lr")
                continue
            nested = value
            for part in reversed(parts):
                nested = {part: nested}
            problems += self.check(nested)
        return problems

    def suggestion(self, section: Kind, key: Any, where: str, path: str) -> str:
        """The key the user most likely meant: a close sibling, else a key of that name elsewhere."""
        folded = {name.lower(): name for name in section.keys}
        close = difflib.get_close_matches(str(key).lower(), list(folded), n=1)
        if close:
            return _sub(where, folded[close[0]])
        elsewhere = self._paths_by_name.get(str(key), [])
        return max(elsewhere, key=lambda other: difflib.SequenceMatcher(None, path, other).ratio(), default="")


class _Walk:
    """One check of one spec: its problems, in the order met."""

    def __init__(self, spec_table: SpecTable):
        self.table = spec_table
        self.title = spec_table.title
        self.problems: list[str] = []

    def say(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")

    def section(self, kind: Kind, value: Mapping, path: str) -> None:
        for key, item in value.items():
            if not self.key_ok(key, path):
                continue
            where = _sub(path, key)
            child = kind.keys.get(key) if isinstance(key, str) else None
            if child is not None:
                self.value(child, item, where)
                continue
            meant = self.table.suggestion(kind, key, path, where)
            self.say(where, f"{self.title}'s spec has no such key" + (f"; did you mean {meant}?" if meant else ""))

    def value(self, kind: Kind, value: Any, path: str, loose: bool = False, fresh: bool = False) -> None:
        """value given for a key of this kind. loose: it becomes a new entry of a list or mapping of scalars
        (a container is stored unread); fresh: a mapping built afresh as a list item (its values convert)."""
        if isinstance(value, str) and ("${" in value or value == "???"):  # resolved or filled in later: any key
            self.interpolation(value, path)
            return
        if value is None:
            if not kind.null:
                self.say(path, f"{self.title}'s spec may not set this to null; it wants {_want(kind)}")
            return
        if not self.plain(value, path):
            return
        if kind.kind == "any":
            self.anything(value, path)
        elif kind.kind == "section" and isinstance(value, Mapping):
            self.section(kind, value, path)
        elif kind.kind == "list":
            self.items(kind, value, path)
        elif kind.kind == "dict":
            self.entries(kind, value, path, fresh)
        elif loose and kind.kind != "section" and (isinstance(value, Mapping) or _is_list(value)):
            self.anything(value, path)  # stored unread
        elif not _takes(kind, value):
            self.wrong(kind, value, path)

    def items(self, kind: Kind, value: Any, path: str) -> None:
        if not _is_list(value):
            self.wrong(kind, value, path)
            return
        for index, item in enumerate(value):
            self.value(kind.of, item, f"{path}[{index}]", loose=True, fresh=True)

    def entries(self, kind: Kind, value: Any, path: str, fresh: bool) -> None:
        if not isinstance(value, Mapping):
            self.wrong(kind, value, path)
            return
        for key, item in value.items():
            if not self.key_ok(key, path):
                continue
            if isinstance(key, str):
                self.value(kind.of, item, _sub(path, key), loose=not fresh)
            else:
                self.say(_sub(path, key), f"the keys of this mapping are strings, not {_got(key)}")

    def anything(self, value: Any, path: str) -> None:
        """A value no schema constrains: only what any spec value must be."""
        if isinstance(value, str):
            self.interpolation(value, path)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if self.key_ok(key, path):
                    self.anything(item, _sub(path, key))
        elif _is_list(value):
            for index, item in enumerate(value):
                self.anything(item, f"{path}[{index}]")
        else:
            self.plain(value, path)

    def plain(self, value: Any, path: str) -> bool:
        if value is None or type(value) in _SCALAR_TYPES or isinstance(value, Mapping) or _is_list(value):
            return True
        hint = "; quote it to keep it a string" if type(value).__name__ in ("date", "datetime") else ""
        self.say(path, f"a {type(value).__name__} value cannot go in a spec: TAO's loader takes strings, numbers, "
                       f"true/false, null, lists and mappings{hint}")
        return False

    def key_ok(self, key: Any, path: str) -> bool:
        if isinstance(key, _KEY_TYPES):
            return True
        self.say(_sub(path, key), f"{_got(key)} cannot be a key of a spec")
        return False

    def interpolation(self, text: str, path: str) -> None:
        if "${" in text and not _closes(text):
            self.say(path, f"{text!r} opens an interpolation ${{...}} that does not close")

    def wrong(self, kind: Kind, value: Any, path: str) -> None:
        hint = ""
        if kind.kind == "int" and type(value) is float and value.is_integer():
            hint = f"; write {int(value)}"
        self.say(path, f"{self.title} wants {_want(kind)} here, not {_got(value)}{hint}")


def _sub(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _escaped(value: Any) -> bool:
    """A string of backslashes then ???: the literal text, never a value left to fill in."""
    return isinstance(value, str) and len(value) > 3 and value.endswith("???") and not value[:-3].strip("\\")


def _closes(text: str) -> bool:
    """Whether every ${ of the text is closed (an escaped \\${ outside one is plain text), none empty."""
    depth = 0
    index = 0
    while index < len(text):
        if depth == 0 and text.startswith("\\${", index):
            index += 3
            continue
        if text.startswith("${", index):
            if text.startswith("}", index + 2):
                return False
            depth += 1
            index += 2
            continue
        if depth and text[index] == "{":
            depth += 1
        elif depth and text[index] == "}":
            depth -= 1
        index += 1
    return depth == 0


def _reads(convert, value: Any) -> bool:
    try:
        convert(value)
    except (ValueError, OverflowError):
        return False
    return True


def _takes(kind: Kind, value: Any) -> bool:
    """Whether a scalar key of this kind takes the value (the merge's own conversions). A section or a container
    given where a scalar is wanted is never taken."""
    if kind.kind == "section" or isinstance(value, Mapping) or _is_list(value):
        return False
    if kind.kind == "str":
        return not isinstance(value, bytes)
    if isinstance(value, bytes) or _escaped(value):
        return False
    if kind.kind == "int":
        return type(value) is int or (type(value) is str and _reads(int, value))
    if kind.kind == "float":
        return type(value) in (int, float, str) and _reads(float, value)  # float() of a huge int overflows
    if kind.kind == "bool":
        if type(value) in (bool, int):
            return True
        return type(value) is str and (_reads(int, value) or value.lower() in _TRUE | _FALSE)
    if kind.kind == "enum":
        if type(value) is int:
            return any(type(member) is int and member == value for _, member in kind.values)
        if type(value) is not str:
            return False
        name = value[len(kind.enum) + 1:] if value.startswith(f"{kind.enum}.") else value
        return any(name == member_name or (type(member) is str and member == name)
                   for member_name, member in kind.values)
    return kind.kind == "any"


_PLURALS = {"int": "integers", "float": "numbers", "bool": "true/false values", "str": "strings",
            "any": "values", "section": "sections", "list": "lists"}


def _want(kind: Kind) -> str:
    if kind.kind == "enum":
        return "one of " + ", ".join(name for name, _ in kind.values)
    if kind.kind == "list":
        return f"a list of {_plural(kind.of)}"
    if kind.kind == "dict":
        return f"a mapping of string keys to {_plural(kind.of)}"
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
            "any": "a value", "section": "a section (a mapping of its keys)"}[kind.kind]


def _plural(kind: Kind) -> str:
    if kind.kind == "enum":
        return "values among " + ", ".join(name for name, _ in kind.values)
    if kind.kind == "dict":
        return f"mappings of string keys to {_plural(kind.of)}"
    return _PLURALS[kind.kind]


def _got(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, Mapping):
        return "a mapping"
    if _is_list(value):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    noun = {int: "an integer", float: "a float", str: "a string"}.get(type(value), f"a {type(value).__name__}")
    return f"{text} ({noun})"
