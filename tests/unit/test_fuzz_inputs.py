"""Fuzzing what users hand tltpipe: config text, --set values, --mounts files, manifests and annotation files.

The property, for any input: a result or a ConfigError (exit code 2, one line, short), never another exception, and
quickly; an annotation parser returns objects with finite boxes and the problems it saw. Bounded: a few hundred
examples each, a deadline per example. It found three bugs while it was written (a YAML tag the safe loader cannot
build, a ~user with no home, a newline in a --set option) and, when the YOLO class names joined, a data.yaml names
key such as "-0" (a KeyError) and names that are no class names (null, yes, an empty string)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_pipe.config import parse_config
from tlt_pipe.datasets.ccpd import parse_ccpd_name
from tlt_pipe.datasets.crpd import parse_crpd
from tlt_pipe.datasets.kitti import parse_kitti
from tlt_pipe.datasets.openalpr import parse_openalpr
from tlt_pipe.datasets.records import Obj
from tlt_pipe.datasets.voc import parse_voc
from tlt_pipe.datasets.yolo import load_names, parse_yolo
from tlt_pipe.errors import ConfigError
from tlt_pipe.launcher_mounts import parse_launcher_mounts
from tlt_pipe.manifest import load_manifest

# Derandomized, so every run (and CI) tries the same inputs; TLTPIPE_FUZZ_RANDOM=1 explores new ones.
FUZZ = settings(max_examples=300, deadline=2000, derandomize=not os.environ.get("TLTPIPE_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BASE = "network: ssd\nname: a\ndataset: {path: data}\n"
KEYS = ["network", "name", "toolkit", "dataset", "model", "train", "train.epochs", "train.batch_size", "prune.threshold",
        "runner.gpus", "runner.env", "engine.data_type", "docker.ulimits", "spec_overrides", "model.pretrained",
        "pytorch_ssd.repo", "tune.space", "sweep.params", "deepstream.source", "inference.threshold"]
# Label text: lines of number-like and odd fields joined by the separators the formats use, or any text.
numbers = (st.floats().map(repr) | st.integers().map(str)
           | st.sampled_from(["nan", "-inf", "1e999", "1e308", "-0", "0x1", "1_0", "\u0661", "\u00b2", ""]))
label_lines = st.lists(numbers | st.text(max_size=6), max_size=12).flatmap(
    lambda fields: st.sampled_from([" ", "\t", ",", "&", "_", "-"]).map(lambda sep: sep.join(fields)))
label_texts = st.text(max_size=300) | st.lists(label_lines, max_size=6).map("\n".join)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=20)


def _finite(objects: list[Obj]) -> bool:
    return all(math.isfinite(v) for o in objects for v in (o.x1, o.y1, o.x2, o.y2))


def _one_line(error: ConfigError) -> None:
    message = str(error)
    assert error.exit_code == 2 and "\n" not in message and len(message) < 1000, message


@FUZZ
@given(st.text(max_size=400))
def test_any_config_text_is_a_config_or_one_line(text):
    try:
        parse_config(text, source="c.yaml", base_dir=Path("/tmp"))
    except ConfigError as error:
        _one_line(error)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.text(max_size=40)), max_size=4))
def test_any_set_option_is_applied_or_one_line(sets):
    try:
        parse_config(BASE, source="c.yaml", base_dir=Path("/tmp"), sets=[f"{k}={v}" for k, v in sets])
    except ConfigError as error:
        _one_line(error)


@FUZZ
@given(st.dictionaries(st.sampled_from(["Mounts", "Envs", "DockerOptions", "Other"]), json_values, max_size=4))
def test_any_mounts_file_is_settings_or_one_line(data):
    try:
        parse_launcher_mounts(json.dumps(data), "m.json")
    except ConfigError as error:
        _one_line(error)


@FUZZ
@given(st.dictionaries(st.sampled_from(["tltpipe", "name", "network", "toolkit", "stages", "pretrained", "created"]),
                       json_values, max_size=7),
       st.dictionaries(st.sampled_from(["status", "metrics", "artifacts", "argv", "outputs", "duration_s"]), json_values,
                       max_size=6))
def test_any_manifest_is_read_or_one_line(tmp_path_factory, top, record):
    folder = tmp_path_factory.mktemp("m")
    (folder / "manifest.json").write_text(json.dumps({**top, "stages": {"evaluate": record}}))
    try:
        load_manifest(folder)
    except ConfigError as error:
        _one_line(error)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: f"<annotation>{t}</annotation>".encode()))
def test_any_voc_bytes_are_objects_or_problems(data):
    objects, problems = parse_voc(data)
    assert all(isinstance(p.line, int) for p in problems)


@FUZZ
@given(st.text(max_size=300))
def test_any_kitti_text_is_objects_or_problems(text):
    objects, problems = parse_kitti(text)
    assert all(o.x1 == o.x1 for o in objects)  # never NaN


@FUZZ
@given(label_texts, st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4).map(tuple),
       st.integers(1, 8192), st.integers(1, 8192))
def test_any_yolo_text_is_objects_or_problems(text, names, width, height):
    objects, problems = parse_yolo(text, names, width, height)
    assert all(o.cls in names for o in objects) and all(isinstance(p.line, int) for p in problems)
    assert all(not math.isnan(v) for o in objects for v in (o.x1, o.y1, o.x2, o.y2))  # inf is clamped later


@FUZZ
@given(st.sampled_from(["obj.names", "data.yaml"]),
       st.text(max_size=200) | st.dictionaries(st.sampled_from(["names", "nc", "path"]), json_values, max_size=3)
       .map(json.dumps) | json_values.map(lambda names: json.dumps({"names": names})))
def test_any_yolo_names_file_is_class_names_or_one_line(tmp_path_factory, name, text):
    path = tmp_path_factory.mktemp("n") / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        names = load_names(path)
    except ConfigError as error:
        _one_line(error)
        return
    assert names and all(isinstance(n, str) and n.strip() for n in names)


@FUZZ
@given(label_texts)
def test_any_crpd_text_is_objects_or_problems(text):
    objects, problems = parse_crpd(text)
    assert _finite(objects) and all(o.x1 <= o.x2 and o.y1 <= o.y2 for o in objects)
    assert all(isinstance(p.line, int) for p in problems)


@FUZZ
@given(st.text(max_size=200) | st.lists(label_lines, min_size=1, max_size=8).map("-".join))
def test_any_ccpd_file_name_is_a_plate_or_none(stem):
    obj = parse_ccpd_name(stem)
    assert obj is None or _finite([obj]) and obj.x1 <= obj.x2 and obj.y1 <= obj.y2
    json.dumps(obj.plate if obj else None, allow_nan=False)  # what goes to plates.jsonl is valid JSON


@FUZZ
@given(label_texts)
def test_any_openalpr_text_is_objects_or_problems(text):
    objects, problems = parse_openalpr(text)
    assert all(not math.isnan(v) for o in objects for v in (o.x1, o.y1, o.x2, o.y2))
    assert all(isinstance(p.line, int) for p in problems)
