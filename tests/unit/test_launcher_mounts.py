from __future__ import annotations

import json

import pytest

from tlt_pipe.config import load_config
from tlt_pipe.errors import ConfigError
from tlt_pipe.launcher_mounts import apply_launcher_mounts, parse_launcher_mounts


def _file(tmp_path, data) -> str:
    path = tmp_path / ".tao_mounts.json"
    path.write_text(json.dumps(data))
    return path


def test_envs_and_docker_options_carry_over_where_the_config_is_silent(write_config, tmp_path):
    config = load_config(write_config())  # sets runner.gpus only
    mounts = _file(tmp_path, {
        "Mounts": [{"source": "/home/me/data", "destination": "/workspace/data"}],
        "Envs": [{"variable": "CUDA_CACHE_MAXSIZE", "value": "4294967296"}],
        "DockerOptions": {"shm_size": "32G", "ulimits": {"memlock": -1, "stack": 67108864}, "user": "1000:1000",
                          "network": "host"},
    })
    updated, notes = apply_launcher_mounts(config, mounts)
    d = updated.docker
    assert (d.shm_size, d.user, d.network, updated.runner.gpus) == ("32G", "1000:1000", "host", 0)
    assert d.ulimits == {"memlock": -1, "stack": 67108864}
    assert updated.runner.env == {"CUDA_CACHE_MAXSIZE": "4294967296"}
    assert notes and "Mounts are not needed" in notes[0]


def test_the_config_wins_over_the_launcher_file(write_config, tmp_path):
    config = load_config(write_config(), sets=["docker.shm_size=8G"])
    updated, _ = apply_launcher_mounts(config, _file(tmp_path, {"Mounts": [], "DockerOptions": {"shm_size": "32G"}}))
    assert updated.docker.shm_size == "8G"


@pytest.mark.parametrize("data, message", [
    ({"Mounts": [], "Extra": 1}, "unknown key 'Extra'"),
    ({"Envs": []}, "Mounts is required"),
    ({"Mounts": [], "DockerOptions": {"gpus": "all"}}, "DockerOptions.gpus is not an option the launcher accepts"),
    ({"Mounts": [], "Envs": [{"name": "A"}]}, "Envs[0]"),
    ({"Mounts": [], "Envs": [{"variable": None, "value": "1"}]}, "Envs[0].variable: expected a variable name, got null"),
    ({"Mounts": [], "Envs": [{"variable": "A=B", "value": "1"}]}, "Envs[0].variable: expected a variable name"),
    ({"Mounts": [], "Envs": [{"variable": "A", "value": "1"}, {"variable": "B", "value": None}]},
     "Envs[1].value: expected a string or a number, got null"),
    ({"Mounts": [], "Envs": [{"variable": "A", "value": ["x"]}]}, "Envs[0].value: expected a string or a number"),
])
def test_the_file_is_checked_like_the_launcher_checks_it(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_launcher_mounts(json.dumps(data), "~/.tao_mounts.json")


def test_bad_json_names_the_line():
    with pytest.raises(ConfigError, match=r"^m.json:2: not valid JSON"):
        parse_launcher_mounts('{"Mounts": [],\n oops}', "m.json")


@pytest.mark.parametrize("value", ['"unlimited"', "null", "[1]", "1e400", "NaN", "1.5", "true"])
def test_a_ulimit_that_is_not_a_whole_number_is_one_line(value):
    text = '{"Mounts": [], "DockerOptions": {"ulimits": {"memlock": %s}}}' % value
    with pytest.raises(ConfigError, match=r"^m.json: DockerOptions.ulimits.memlock: expected a whole number"):
        parse_launcher_mounts(text, "m.json")
    assert parse_launcher_mounts('{"Mounts": [], "DockerOptions": {"ulimits": {"memlock": -1}}}', "m").docker == \
        {"ulimits": {"memlock": -1}}


def test_env_values_that_are_numbers_become_text():
    text = '{"Mounts": [], "Envs": [{"variable": "A", "value": 3}, {"variable": "B", "value": "x y"}]}'
    assert parse_launcher_mounts(text, "m.json").env == {"A": "3", "B": "x y"}


def test_envs_not_a_list_and_a_file_not_utf8_are_one_line(write_config, tmp_path):
    with pytest.raises(ConfigError, match="Envs must be a list"):
        parse_launcher_mounts('{"Mounts": [], "Envs": {"A": "1"}}', "m.json")
    mounts = tmp_path / "mounts.json"
    mounts.write_bytes(b'{"Mounts": [], "Envs": [{"variable": "A", "value": "\xff"}]}')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        apply_launcher_mounts(load_config(write_config()), mounts)
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_launcher_mounts("[" * 100_000, "m.json")


def test_a_number_too_long_to_read_is_one_line():
    with pytest.raises(ConfigError, match=r"^m.json: cannot read: Exceeds the limit"):
        parse_launcher_mounts('{"Mounts": [], "DockerOptions": {"ulimits": {"x": %s}}}' % ("9" * 5000), "m.json")


@pytest.mark.parametrize("options, message", [
    ({"ports": [1, 2]}, r"DockerOptions\.ports: Input should be a valid dictionary"),
    ({"user": 5}, r"DockerOptions\.user: Input should be a valid string"),
    ({"shm_size": "lots"}, r"DockerOptions\.shm_size: 'lots' is not a size Docker reads"),
])
def test_a_docker_option_of_the_wrong_kind_names_the_option(write_config, tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        apply_launcher_mounts(load_config(write_config()), _file(tmp_path, {"Mounts": [], "DockerOptions": options}))
