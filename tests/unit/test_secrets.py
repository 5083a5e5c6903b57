from __future__ import annotations

import pytest

from tlt_pipe.errors import ConfigError
from tlt_pipe.secrets import read_key, redact, redact_argv, scrub_files


def test_redaction_of_text_and_argv():
    assert redact("key=nvidia_tlt and nvidia_tlt", ["nvidia_tlt"]) == "key=*** and ***"
    assert redact_argv(["ssd", "train", "-k", "nvidia_tlt"], ["nvidia_tlt", ""]) == ["ssd", "train", "-k", "***"]


def test_key_comes_from_the_environment_and_must_not_be_tiny():
    assert read_key({"TLTPIPE_KEY": "nvidia_tlt"}) == "nvidia_tlt"
    assert read_key({}) is None and read_key({"TLTPIPE_KEY": ""}) is None
    with pytest.raises(ConfigError, match="TLTPIPE_KEY is too short"):
        read_key({"TLTPIPE_KEY": "tlt"})


def test_scrub_rewrites_text_files_but_never_binary_models(tmp_path):
    text = tmp_path / "nvinfer_config.txt"
    text.write_text("tlt-model-key=nvidia_tlt\nnetwork-type=0\n")
    model = tmp_path / "ssd.etlt"
    model.write_bytes(b"\x05\x00\x00\x00Input\x00\xffnvidia_tlt\x9a")
    assert scrub_files([tmp_path], ["nvidia_tlt"]) == [str(text)]
    assert text.read_text() == "tlt-model-key=***\nnetwork-type=0\n"
    assert model.read_bytes() == b"\x05\x00\x00\x00Input\x00\xffnvidia_tlt\x9a"


def test_a_task_never_inherits_the_keys_tltpipe_reads():
    from tlt_pipe.secrets import task_environment

    env = {"TLTPIPE_KEY": "k3yk3y", "NGC_API_KEY": "nvapi-123", "NGC_CLI_API_KEY": "x", "PATH": "/bin",
           "HOLDS": "--key=k3yk3y", "HOME": "/root"}
    assert task_environment(env, ["k3yk3y", ""]) == {"PATH": "/bin", "HOME": "/root"}
