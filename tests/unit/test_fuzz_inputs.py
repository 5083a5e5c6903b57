"""Fuzzing what users hand tltpipe: config text, --set values, --mounts files, manifests and annotation files.

The property, for any input: a result or a ConfigError (exit code 2, one line, short), never another exception, and
quickly. Bounded: a few hundred examples each, a deadline per example. It found three bugs while it was written (a YAML
tag the safe loader cannot build, a ~user with no home, a newline in a --set option)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_pipe.config import parse_config
from tlt_pipe.datasets.kitti import parse_kitti
from tlt_pipe.datasets.voc import parse_voc
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
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=20)


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
