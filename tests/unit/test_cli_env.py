"""Shell completion and TLTPIPE_<COMMAND>_<OPTION> environment variables reach the subcommands."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tlt_pipe import cli
from test_doctor import FakeRunner


def test_bash_completion_script():
    result = CliRunner().invoke(cli.main, [], prog_name="tltpipe", env={"_TLTPIPE_COMPLETE": "bash_source"})
    assert result.exit_code == 0 and "_tltpipe_completion" in result.output and "complete " in result.output


def test_completion_of_stage_names():
    env = {"_TLTPIPE_COMPLETE": "bash_complete", "COMP_WORDS": "tltpipe stage ev", "COMP_CWORD": "2"}
    result = CliRunner().invoke(cli.main, [], prog_name="tltpipe", env=env)
    assert "plain,evaluate" in result.output and "plain,evaluate_retrain" in result.output


def test_options_from_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_docker_runner_default", lambda: FakeRunner())
    # TLTPIPE_<COMMAND>_<PARAMETER>, the parameter as the code names it: --json is as_json, --config config_path.
    env = {"TLTPIPE_DOCTOR_AS_JSON": "1", "TLTPIPE_DOCTOR_RUN_DIR": str(tmp_path / "here")}
    result = CliRunner().invoke(cli.main, ["doctor"], env=env)
    checks = [json.loads(line) for line in result.output.splitlines()]
    assert any(c["check"] == "write" and str(tmp_path / "here") in c["detail"] for c in checks)


def test_config_and_run_dir_from_the_environment(write_config, tmp_path):
    config = write_config()
    env = {"TLTPIPE_CONFIG": str(config), "TLTPIPE_RUN_DIR": str(tmp_path / "from-env")}
    result = CliRunner().invoke(cli.main, ["stage", "train", "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "from-env") in result.output
