"""tltpipe's pre-flight check of RT-DETR and DINO specs (tlt_pipe.pyt_schema) against NVIDIA's own experiment
configs: the committed key tables equal a fresh render from nvidia-tao-core, and check_spec accepts a spec
exactly when OmegaConf merging it into the network's ExperimentConfig does (tests/reference/pyt_schema_table).

The specs are YAML's values: null, booleans, integers, floats, strings, binary data, dates, lists, mappings.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
import re
from typing import Any, Dict, List, Optional, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reference import pyt_schema_table as reference
from tlt_pipe import pyt_schema

NETWORKS = pyt_schema.known_networks()
SETTINGS = settings(max_examples=100, deadline=None, derandomize=not os.environ.get("TLTPIPE_FUZZ_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Values a YAML spec can hold, each a probe of one of the merge's rules.
POOL: list[Any] = [
    None, True, False, 0, 1, -7, 3.0, 2.5, float("nan"), 10**400, 2**70,
    "3", " 4 ", "3_0", "3.0", "1e-4", "inf", "", "abc", "yes", "OFF", "y", "٣",
    "???", "\\???", "${model.backbone}", "${oc.env:HOME,x}", "a_${b}_c", "${", "x ${a", "${}",
    b"raw", datetime.date(2020, 1, 1),
    [], [1, 2], ["a", "b"], [None], [[1]], ["???"], ["${a}"], [True, 2.5], [{"image_dir": "a", "json_file": "b"}],
    [{"image_dir": ["a"]}], [{"image_dir": None}], [{"zz": 1}], [{}], [{3: "a"}], [b"x"], [datetime.date(2020, 1, 1)],
    {}, {"image_dir": "a", "json_file": "b"}, {"a": 1}, {"a": None}, {"a": [1, None]}, {"a": {"b": None}},
    {3: "a"}, {None: "a"}, {"lr": 1}, {"a": datetime.date(2020, 1, 1)}, {"a": "${"},
]


def _nest(path: str, value: Any) -> Any:
    """The spec that sets the table path (a "[]" segment is one list item) to value."""
    for part in reversed(path.split(".")):
        base, suffixes = re.fullmatch(r"(.+?)((?:\[\])*)", part).groups()
        for _ in range(len(suffixes) // 2):
            value = [value]
        value = {base: value}
    return value


def _agree(network: str, spec: Any) -> None:
    ours, theirs = pyt_schema.check_spec(network, spec), reference.merge_problems(network, spec)
    assert bool(ours) == bool(theirs), f"{network} {spec!r}\n tltpipe: {ours}\n OmegaConf: {theirs}"


def _keys(network: str) -> dict[str, dict]:
    return json.loads(reference.path_for(network).read_text(encoding="utf-8"))["keys"]


def _representatives() -> list[tuple[str, str]]:
    """(network, path): one path per shape of key over all networks, a shape being the key's entry and whether
    it sits in a list item. The keys of a section that may be null (distill) are among them."""
    seen, chosen = set(), []
    for network in NETWORKS:
        for path, entry in _keys(network).items():
            shape = (json.dumps(entry, sort_keys=True), "[]" in path)
            if shape not in seen:
                seen.add(shape)
                chosen.append((network, path))
    return chosen


@pytest.mark.parametrize("network", NETWORKS)
def test_tltpipe_tables_equal_nvidia_experiment_configs(network):
    assert reference.path_for(network).read_text(encoding="utf-8") == reference.render(network), (
        f"src/tlt_pipe/schemas/pyt-{network}.json is stale: run python -m tests.reference.pyt_schema_table")


@pytest.mark.parametrize("network, path", _representatives(), ids=[f"{n}:{p}" for n, p in _representatives()])
def test_every_shape_takes_what_the_merge_takes(network, path):
    """Every kind of key (and list item, and key of a section that may be null) given every probe value."""
    outcomes = set()
    for value in POOL:
        spec = _nest(path, value)
        _agree(network, spec)
        outcomes.add(bool(pyt_schema.check_spec(network, spec)))
    assert outcomes == {True, False}


@pytest.mark.parametrize("network", NETWORKS)
def test_every_key_takes_a_value_of_its_kind_and_a_typo_gets_a_suggestion(network):
    """Per key, with the rules the shapes above prove: no merge needed."""
    sample = {"int": "12", "float": 1, "bool": "on", "str": 5, "any": [1], "section": {}, "list": [], "dict": {}}
    for path, entry in _keys(network).items():
        assert pyt_schema.check_spec(network, _nest(path, sample[entry["kind"]])) == [], path
        *where, name = path.split(".")
        typo = ".".join([*where, name[:-1] + name[-1].upper() + "x"])
        problems = pyt_schema.check_spec(network, _nest(typo, 1))
        assert len(problems) == 1 and "has no such key; did you mean" in problems[0], (typo, problems)


def _mutated_key(name: str, data) -> str:
    index = data.draw(st.integers(0, len(name)))
    return name[:index] + data.draw(st.sampled_from(["x", "_", ""])) + name[index + 1:]


def _scalar(kind: str, data, members: tuple = ()) -> Any:
    valid = {
        "enum": st.sampled_from([value for member in members for value in member] or ["?"]),
        "int": st.integers(-5, 10**6) | st.sampled_from(["3", " 12 ", "-4"]),
        "float": st.floats(allow_nan=False, width=32) | st.integers(-3, 3) | st.sampled_from(["1e-4", "0.5"]),
        "bool": st.booleans() | st.sampled_from([0, 1, "yes", "False", "1"]),
        "str": st.text(alphabet=st.characters(blacklist_characters="$\\", blacklist_categories=["Cs"]), max_size=8),
        "any": st.integers() | st.text(max_size=3).filter(lambda text: "${" not in text),
    }
    return data.draw(valid[kind])


def _value(kind: pyt_schema.Kind, data, depth: int) -> Any:
    """A value for a key of this kind: mostly one it takes, sometimes any probe value."""
    if depth > 5 or data.draw(st.integers(0, 6)) == 0:
        return data.draw(st.sampled_from(POOL))
    if kind.kind == "section":
        return _section(kind, data, depth + 1)
    if kind.kind == "list":
        return [_value(kind.of, data, depth + 1) for _ in range(data.draw(st.integers(0, 3)))]
    if kind.kind == "dict":
        names = data.draw(st.lists(st.sampled_from(["image_dir", "json_file", "classmap", "x"]), max_size=3))
        return {name: _value(kind.of, data, depth + 1) for name in names}
    return _scalar(kind.kind, data, kind.values)


def _section(kind: pyt_schema.Kind, data, depth: int) -> dict:
    names = data.draw(st.lists(st.sampled_from(sorted(kind.keys)), max_size=4, unique=True))
    spec = {name: _value(kind.keys[name], data, depth) for name in names}
    if names and data.draw(st.integers(0, 9)) == 0:
        spec[_mutated_key(names[0], data)] = spec.pop(names[0])
    return spec


@pytest.mark.parametrize("network", NETWORKS)
@SETTINGS
@given(data=st.data())
def test_check_spec_accepts_exactly_what_the_merge_accepts(network, data):
    _agree(network, _section(pyt_schema.table(network).root, data, 0))


@pytest.mark.parametrize("network", NETWORKS)
@SETTINGS
@given(data=st.data())
def test_check_overrides_accepts_exactly_what_the_merge_accepts(network, data):
    keys = [path for path in _keys(network) if "[]" not in path]
    path = data.draw(st.sampled_from(keys))
    if data.draw(st.booleans()):
        *where, name = path.split(".")
        path = ".".join([*where, _mutated_key(name, data)])
    value = data.draw(st.sampled_from(POOL)) if data.draw(st.booleans()) else _scalar("int", data)
    ours = pyt_schema.check_overrides(network, {path: value})
    theirs = reference.merge_problems(network, _nest(path, value))
    assert bool(ours) == bool(theirs), f"{path}={value!r}\n tltpipe: {ours}\n OmegaConf: {theirs}"
    assert not ours or all(problem.startswith(path.split(".")[0]) for problem in ours)


# --- enums: no RT-DETR or DINO key is an Enum today, so the check's enum rules are proven on a probe class ----
class Colour(enum.Enum):
    RED = 1
    GREEN = "green"


@dataclasses.dataclass
class _EnumProbe:
    colour: Colour = Colour.RED
    maybe: Optional[Colour] = None
    colours: List[Colour] = dataclasses.field(default_factory=list)
    by_name: Dict[str, Colour] = dataclasses.field(default_factory=dict)


def test_enum_keys_take_what_the_merge_takes():
    from omegaconf import OmegaConf

    keys = reference.key_table(_EnumProbe)
    assert keys["colour"] == {"kind": "enum", "enum": "Colour", "values": [["RED", 1], ["GREEN", "green"]]}
    probe = pyt_schema.SpecTable(keys, "Probe")
    values = [*POOL, "RED", "Colour.RED", "GREEN", "green", "Colour.green", "red", "Colour", 1, 2, "1", 1.0]
    base = OmegaConf.structured(_EnumProbe)
    for path in ("colour", "maybe", "colours[]", "by_name.x"):
        for value in values:
            spec = _nest(path, value)
            theirs = reference.structured_merge_problems(base, spec)
            assert bool(probe.check(spec)) == bool(theirs), f"{spec!r}: {probe.check(spec)} / {theirs}"


@dataclasses.dataclass
class _Union:
    either: Union[int, str] = 0


@dataclasses.dataclass
class _FilledDict:
    sources: Dict[str, str] = dataclasses.field(default_factory=lambda: {"image_dir": ""})


@dataclasses.dataclass
class _ListOfLists:
    grid: List[List[int]] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("config", [_Union, _FilledDict, _ListOfLists])
def test_the_generator_refuses_shapes_the_check_has_not_been_proven_on(config):
    with pytest.raises(reference.UnsupportedShape, match="extend tlt_pipe.pyt_schema"):
        reference.key_table(config)
