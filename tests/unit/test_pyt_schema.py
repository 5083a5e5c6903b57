"""tlt_pipe.pyt_schema: the pre-flight check of RT-DETR and DINO specs and its messages, from tltpipe's own
key tables (no NVIDIA wheel, no OmegaConf). tests/conformance/test_pyt_schema_conformance.py holds the check
to NVIDIA's classes."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from importlib import resources

import pytest

from tlt_pipe.pyt_schema import SpecTable, check_overrides, check_spec, known_networks, table


def test_the_networks_and_their_tables():
    assert set(known_networks()) == {"rtdetr", "dino"}
    for network in known_networks():
        text = resources.files("tlt_pipe").joinpath("schemas", f"pyt-{network}.json").read_text(encoding="utf-8")
        data = json.loads(text)
        assert data["network"] == network and data["derived_from"].startswith("nvidia-tao-core==")
        assert list(data["keys"]) == sorted(data["keys"])
        assert {"dataset.train_data_sources", "train.optim.lr", "model.backbone"} <= set(data["keys"])
    assert table("rtdetr") is table("rtdetr")  # read once


def test_an_unknown_network_is_named():
    with pytest.raises(ValueError, match="no spec table for 'yolo_v4'; it has: dino, rtdetr"):
        check_spec("yolo_v4", {})


def test_a_good_spec_has_no_problems():
    spec = {
        "dataset": {"train_data_sources": [{"image_dir": "/d/images", "json_file": "/d/train.json"}],
                    "val_data_sources": {"image_dir": "/d/images", "json_file": "/d/val.json"},
                    "num_classes": 3, "batch_size": 4, "augmentation": {"multi_scales": [480, 512]}},
        "train": {"num_gpus": 1, "num_epochs": 10, "optim": {"lr": 1e-4, "lr_steps": [5]}},
        "model": {"backbone": "resnet_50", "pretrained_backbone_path": None},
        "distill": None,
        "results_dir": "/results",
    }
    assert check_spec("rtdetr", spec) == []


@pytest.mark.parametrize("spec, problem", [
    ({"train": {"optim": {"lrr": 1}}}, "train.optim.lrr: RT-DETR's spec has no such key; did you mean train.optim.lr?"),
    ({"trian": {}}, "trian: RT-DETR's spec has no such key; did you mean train?"),
    ({"train": {"lr": 1}}, "train.lr: RT-DETR's spec has no such key; did you mean train.optim.lr?"),
    ({"train": {"Num_Epochs": 1}}, "train.Num_Epochs: RT-DETR's spec has no such key; did you mean train.num_epochs?"),
    ({"train": {"zzqqvv": 1}}, "train.zzqqvv: RT-DETR's spec has no such key"),
    ({"train": {3: 1}}, "train.3: RT-DETR's spec has no such key"),
    ({"quantize": {"layers": [{"modul_name": "x"}]}},
     "quantize.layers[0].modul_name: RT-DETR's spec has no such key; did you mean quantize.layers[0].module_name?"),
])
def test_an_unknown_key_is_named_with_the_key_meant(spec, problem):
    assert check_spec("rtdetr", spec) == [problem]


@pytest.mark.parametrize("spec, problem", [
    ({"train": {"num_epochs": "ten"}}, "train.num_epochs: DINO wants an integer here, not 'ten' (a string)"),
    ({"train": {"num_epochs": 3.0}}, "train.num_epochs: DINO wants an integer here, not 3.0 (a float); write 3"),
    ({"train": {"num_epochs": "3.0"}}, "train.num_epochs: DINO wants an integer here, not '3.0' (a string)"),
    ({"train": {"num_epochs": True}}, "train.num_epochs: DINO wants an integer here, not true (a boolean)"),
    ({"train": {"optim": {"lr": False}}}, "train.optim.lr: DINO wants a number here, not false (a boolean)"),
    ({"dataset": {"pin_memory": "maybe"}}, "dataset.pin_memory: DINO wants true or false here, not 'maybe' (a string)"),
    ({"dataset": {"pin_memory": 1.0}}, "dataset.pin_memory: DINO wants true or false here, not 1.0 (a float)"),
    ({"model": {"backbone": ["resnet_50"]}}, "model.backbone: DINO wants a string here, not a list"),
    ({"train": 3}, "train: DINO wants a section (a mapping of its keys) here, not 3 (an integer)"),
    ({"train": {"optim": "adamw"}},
     "train.optim: DINO wants a section (a mapping of its keys) here, not 'adamw' (a string)"),
    ({"dataset": {"augmentation": {"scales": 640}}},
     "dataset.augmentation.scales: DINO wants a list of integers here, not 640 (an integer)"),
    ({"dataset": {"augmentation": {"scales": [480, "big"]}}},
     "dataset.augmentation.scales[1]: DINO wants an integer here, not 'big' (a string)"),
    ({"dataset": {"augmentation": {"scales": {"a": 1}}}},
     "dataset.augmentation.scales: DINO wants a list of integers here, not a mapping"),
    ({"dataset": {"test_data_sources": ["/d/images"]}},
     "dataset.test_data_sources: DINO wants a mapping of string keys to strings here, not a list"),
    ({"dataset": {"train_data_sources": [{"image_dir": ["/a", "/b"]}]}},
     "dataset.train_data_sources[0].image_dir: DINO wants a string here, not a list"),
    ({"dataset": {"train_data_sources": ["/d/images"]}},
     "dataset.train_data_sources[0]: DINO wants a mapping of string keys to strings here, not '/d/images' (a string)"),
    ({"dataset": {"test_data_sources": {1: "/d"}}},
     "dataset.test_data_sources.1: the keys of this mapping are strings, not 1 (an integer)"),
    ({"model": {"backbone": b"\x00"}}, "model.backbone: DINO wants a string here, not binary data"),
    ({"model": {"backbone": "\\???"}}, None),
    ({"train": {"num_epochs": "\\???"}}, "train.num_epochs: DINO wants an integer here, not '\\\\???' (a string)"),
])
def test_a_wrong_type_is_named_with_what_the_key_wants(spec, problem):
    assert check_spec("dino", spec) == ([problem] if problem else [])


@pytest.mark.parametrize("spec", [
    {"train": {"num_epochs": "3"}}, {"train": {"num_epochs": " 12 "}}, {"train": {"num_epochs": "1_000"}},
    {"train": {"optim": {"lr": 1}}}, {"train": {"optim": {"lr": "1e-4"}}}, {"train": {"optim": {"lr": "inf"}}},
    {"dataset": {"pin_memory": "yes"}}, {"dataset": {"pin_memory": "OFF"}}, {"dataset": {"pin_memory": 0}},
    {"dataset": {"pin_memory": "1"}}, {"model": {"backbone": 50}}, {"model": {"backbone": True}},
    {"train": {"num_epochs": "???"}}, {"train": "???"}, {"train": {"num_epochs": "${train.num_gpus}"}},
    {"train": "${model}"}, {"train": {"optim": {"lr": "${oc.env:LR,1e-4}"}}},
    {"dataset": {"augmentation": {"scales": [[480]]}}},  # a container as an item of a list of scalars: stored unread
    {"dataset": {"test_data_sources": {"image_dir": ["/a"]}}},  # likewise as a new entry of a mapping of strings
    {"quantize": {"backend_kwargs": {"a": [1, {"b": None, 2: "c"}]}}},
    {"dataset": {"augmentation": {"scales": ("480", 512)}}},
])
def test_what_the_merge_converts_or_defers_is_accepted(spec):
    assert check_spec("dino", spec) == []


def test_null_only_where_a_key_may_be_null():
    assert check_spec("rtdetr", {"train": {"num_epochs": None}}) == [
        "train.num_epochs: RT-DETR's spec may not set this to null; it wants an integer"]
    assert check_spec("rtdetr", {"dataset": {"augmentation": {"multi_scales": [480, None]}}}) == [
        "dataset.augmentation.multi_scales[1]: RT-DETR's spec may not set this to null; it wants an integer"]
    assert check_spec("rtdetr", {"model": None}) == [
        "model: RT-DETR's spec may not set this to null; it wants a section (a mapping of its keys)"]
    assert check_spec("rtdetr", {"distill": None, "evaluate": {"input_width": None},
                                 "dataset": {"train_data_sources": None}}) == []


def test_values_and_keys_no_spec_can_hold():
    assert check_spec("rtdetr", {"results_dir": datetime.date(2024, 5, 1)}) == [
        "results_dir: a date value cannot go in a spec: TAO's loader takes strings, numbers, true/false, null, "
        "lists and mappings; quote it to keep it a string"]
    assert check_spec("rtdetr", {"quantize": {"backend_kwargs": {"a": {None: 1}}}}) == [
        "quantize.backend_kwargs.a.None: null cannot be a key of a spec"]
    assert check_spec("rtdetr", {"model": {"backbone": "${model"}}) == [
        "model.backbone: '${model' opens an interpolation ${...} that does not close"]
    assert check_spec("rtdetr", [1]) == ["the spec is a list; RT-DETR's spec is a mapping of sections"]


def test_every_problem_is_reported():
    problems = check_spec("rtdetr", {"train": {"num_epochs": "x", "optim": {"lrr": 1}}, "modle": {}})
    assert [problem.split(":")[0] for problem in problems] == ["train.num_epochs", "train.optim.lrr", "modle"]


def test_overrides_are_checked_by_their_dotted_path():
    assert check_overrides("rtdetr", {"train.optim.lr": 1e-4, "dataset.pin_memory": False,
                                      "train.optim": {"momentum": 0.9}}) == []
    assert check_overrides("rtdetr", {"train.optim.lrr": 1e-4}) == [
        "train.optim.lrr: RT-DETR's spec has no such key; did you mean train.optim.lr?"]
    assert check_overrides("dino", {"train.num_epochs": "many"}) == [
        "train.num_epochs: DINO wants an integer here, not 'many' (a string)"]
    assert check_overrides("dino", {"train..lr": 1, "": 2}) == [
        "'train..lr': an override names a key by its dotted path, such as train.optim.lr",
        "'': an override names a key by its dotted path, such as train.optim.lr"]
    assert check_overrides("dino", {"dataset.augmentation.scales.0": 480}) == [
        "dataset.augmentation.scales: DINO wants a list of integers here, not a mapping"]


def test_enum_keys_take_a_member_by_name_or_value():
    probe = SpecTable({"colour": {"kind": "enum", "enum": "Colour", "values": [["RED", 1], ["GREEN", "green"]]},
                       "colours": {"kind": "list", "of": {"kind": "enum", "enum": "Colour", "values": [["RED", 1]]}}},
                      "Probe")
    for value in ("RED", "Colour.RED", 1, "green", "GREEN", "Colour.green", "???"):
        assert probe.check({"colour": value}) == [], value
    for value in ("BLUE", "red", 1.0, True, 2, "1"):
        assert probe.check({"colour": value}) == [
            f"colour: Probe wants one of RED, GREEN here, not {_shown(value)}"], value
    assert probe.check({"colours": [1, "BLUE"]}) == ["colours[1]: Probe wants one of RED here, not 'BLUE' (a string)"]


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true (a boolean)"
    noun = {int: "an integer", float: "a float", str: "a string"}[type(value)]
    return f"{value!r} ({noun})"


def test_the_check_needs_no_omegaconf():
    code = ("import sys; from tlt_pipe.pyt_schema import check_spec; "
            "assert check_spec('dino', {'train': {'num_epochs': 'x'}}); assert 'omegaconf' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
