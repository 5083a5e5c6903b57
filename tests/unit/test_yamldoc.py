"""What a hostile or careless YAML file gets: one line naming the file and line, exit code 2, never a traceback
or a hang."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tlt_pipe import yamldoc
from tlt_pipe.cli import main
from tlt_pipe.config import parse_config
from tlt_pipe.errors import ConfigError

GOOD = "network: ssd\nname: a\ndataset: {path: data}\n"


def _refused(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.yaml", base_dir=Path("/tmp"))
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2 and len(message) < 400
    return message


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\x07"])
def test_a_control_character_names_its_line(char):
    assert _refused(GOOD + f"notes_x: \"{char}[31mred\"\n").startswith(f"c.yaml:4: a control character ({char!r})")


def test_a_tag_yaml_cannot_build_names_its_line():
    assert _refused(GOOD + "train: !secret 3\n").startswith("c.yaml:4: invalid YAML: could not determine a constructor")
    assert _refused("=\n").startswith("c.yaml:1: invalid YAML")


def test_a_path_starting_with_an_unknown_user_is_one_line():
    assert "model.pretrained: ~nosuchuser0/w.hdf5: no home folder for that ~user" in _refused(
        GOOD + "model: {pretrained: ~nosuchuser0/w.hdf5}\n")


def test_a_resize_past_8192_pixels_is_refused_at_load():
    assert "dataset.resize: 65536x65536: at most 8192 pixels a side" in _refused(
        "network: ssd\nname: a\ndataset: {path: data, resize: 65536x65536}\n")


def test_duplicate_keys_name_both_lines():
    assert _refused(GOOD + "train: {epochs: 3}\ntrain: {epochs: 4}\n") == \
        "c.yaml:5: duplicate key 'train' (also on line 4); YAML would keep only the last"
    assert "duplicate key 'epochs'" in _refused(GOOD + "train:\n  epochs: 3\n  epochs: 4\n")


def test_alias_bombs_deep_nesting_and_huge_numbers_end_at_once():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    started = time.monotonic()
    assert "expands to more than 100,000 values" in _refused(bomb)
    assert "nested more than 64 levels" in _refused("a: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested more than 64 levels" in _refused("a: &a [*a]\n")  # a cycle
    assert "a value YAML cannot read" in _refused(GOOD + "train: {epochs: " + "9" * 5000 + "}\n")
    assert _refused("x" * (yamldoc.MAX_BYTES + 1)).startswith("c.yaml: 1,048,577 characters: too large")
    assert time.monotonic() - started < 5


def test_the_command_line_says_it_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(GOOD + "train: {epochs: 3}\ntrain: {epochs: 4}\n")
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--dry-run"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{config}:5: duplicate key 'train'" in result.stderr
    config.write_text(GOOD)
    (tmp_path / "data").mkdir()
    bad_set = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--set", "train.epochs=\x1b[3"])
    assert bad_set.exit_code == 2 and "control character" in bad_set.stderr
