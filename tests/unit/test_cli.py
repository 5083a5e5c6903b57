from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from tlt_pipe import __version__
from tlt_pipe.cli import main
from tlt_pipe.manifest import Manifest, save_manifest
from tlt_pipe.registry import DEFAULT_TOOLKIT


def test_version_and_module_entry_point():
    assert CliRunner().invoke(main, ["--version"]).output.strip() == f"tltpipe, version {__version__}"
    result = subprocess.run([sys.executable, "-m", "tlt_pipe", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "Usage:" in result.stdout


def test_init_prints_a_config_that_runs_dry(tmp_path):
    text = CliRunner().invoke(main, ["init", "ssd", "--toolkit", "5.0"]).output
    config = tmp_path / "lpd.yaml"
    config.write_text(text)
    dry = ["run", "ssd", "--config", str(config), "--dry-run", "--json", "--run-dir", str(tmp_path / "run")]
    missing = CliRunner().invoke(main, dry)  # a plan checks the inputs as a run does
    assert missing.exit_code == 2 and "dataset.path:" in missing.stderr and "does not exist" in missing.stderr
    (tmp_path / "data" / "plates").mkdir(parents=True)
    result = CliRunner().invoke(main, dry)
    assert result.exit_code == 0, result.output
    stages = [json.loads(line)["stage"] for line in result.output.splitlines()]
    assert stages[0] == "prepare" and stages[-1] == "deepstream"
    assert "pretrained: ngc:nvidia/tao/pretrained_object_detection:resnet18 " in text  # NGC, for the backbone
    empty = CliRunner().invoke(main, ["init", "ssd", "--toolkit", ""])  # once the default toolkit, unasked
    assert empty.exit_code == 2 and empty.stderr.strip() == \
        f"tltpipe: error: --toolkit '': give a TAO version, e.g. {DEFAULT_TOOLKIT}"
    named = CliRunner().invoke(main, ["init", "ssd", "--name", "a: b"])
    assert named.exit_code == 2 and "--name 'a: b': letters, digits" in named.stderr
    detectnet = CliRunner().invoke(main, ["init", "detectnet_v2"]).output
    assert "pretrained: ngc:nvidia/tao/pretrained_detectnet_v2:resnet18 " in detectnet
    assert "pretrained: ngc:nvidia/tao/pretrained_object_detection:cspdarknet_tiny " in \
        CliRunner().invoke(main, ["init", "yolo_v4_tiny"]).output


def test_config_error_is_one_line_with_exit_code_2(write_config, tmp_path):
    config = write_config(extra="train: {epochs: 0}\n")
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(f"tltpipe: error: {config}:") and "train.epochs" in lines[0]


def test_unreachable_docker_engine_is_exit_code_3_before_any_stage(write_config, tmp_path):
    config = write_config()
    run_dir = tmp_path / "run"
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "tlt_pipe", "run", "ssd", "--config", str(config),
                             "--run-dir", str(run_dir)], capture_output=True, text=True,
                            env={**os.environ, **env})
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().startswith("tltpipe: error: cannot reach the Docker engine")
    assert "Traceback" not in result.stderr
    assert not (run_dir / "data").exists()


def test_mounts_file_is_honoured_and_checked(write_config, tmp_path):
    config = write_config()
    good = tmp_path / "mounts.json"
    good.write_text(json.dumps({"Mounts": [{"source": "/a", "destination": "/b"}],
                                "DockerOptions": {"shm_size": "32G"}}))
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--mounts", str(good), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Mounts are not needed" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Mounts": [], "DockerOptions": {"gpus": "all"}}))
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--mounts", str(bad), "--dry-run"])
    assert result.exit_code == 2 and "DockerOptions.gpus is not an option the launcher accepts" in result.stderr


def test_gc_finds_the_local_runners_orphaned_jobs_in_the_run_folders(tmp_path, monkeypatch):
    """A host job whose run no live tltpipe holds is listed, then removed; with every runner asked,
    an unreachable Docker engine is said on stderr, not fatal."""
    job = tmp_path / "runs" / "lpd" / ".tltpipe" / "jobs" / "train-1a2b3c4d"
    job.mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"labels": {"tltpipe.run": str(tmp_path / "runs" / "lpd"),
                                                         "tltpipe.stage": "train"}, "log": "x"}))
    (job / "pid").write_text("999999999")  # no such process: the job ended with its tltpipe
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    listed = CliRunner().invoke(main, ["gc", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert f"would remove local job train-1a2b3c4d (exited; {tmp_path}/runs/lpd stage train)" in listed.stdout
    assert "not checked: docker" in listed.stderr and job.exists()
    removed = CliRunner().invoke(main, ["gc", "--runner", "local"])
    assert removed.exit_code == 0 and "removed local job train-1a2b3c4d" in removed.stdout and not job.exists()
    assert "no orphaned tltpipe jobs" in CliRunner().invoke(main, ["gc", "--runner", "local"]).stdout
    assert CliRunner().invoke(main, ["gc", "--runner", "docker"]).exit_code == 3
    mistyped = CliRunner().invoke(main, ["gc", "--runner", "local", "--runs", str(tmp_path / "rnus")])
    assert mistyped.exit_code == 2 and f"Directory '{tmp_path / 'rnus'}' does not exist" in mistyped.stderr


def test_a_run_directory_or_report_folder_that_is_a_file_is_one_line(write_config, tmp_path):
    config = write_config()
    (tmp_path / "taken").write_text("not a folder")
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "the run directory is a file" in result.stderr and "Traceback" not in result.output
    nested = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "taken" / "x")])
    assert nested.exit_code == 2 and "the run directory is a file (or inside one)" in nested.stderr
    run = tmp_path / "run"
    save_manifest(run, Manifest(tltpipe="0", name="lpd", network="ssd", toolkit="5.0"))
    (run / "report").write_text("a file")
    report = CliRunner().invoke(main, ["report", str(run)])
    assert report.exit_code == 2 and "report: is a file" in report.stderr


def test_a_dry_run_refuses_a_run_directory_the_run_would_refuse(write_config, tmp_path):
    config = write_config()
    (tmp_path / "taken").write_text("not a folder")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for run_dir, message in ((tmp_path / "taken", "the run directory is a file"),
                             (tmp_path / "taken" / "x", "the run directory is a file (or inside one)"),
                             (tmp_path / "loop", "cannot use it as the run directory"),
                             (tmp_path / ("a" * 300), "cannot use it as the run directory: File name too long")):
        result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--dry-run", "--run-dir", str(run_dir)])
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
    doctor = CliRunner().invoke(main, ["doctor", "--run-dir", str(tmp_path / "loop")])
    assert doctor.exit_code == 2 and "cannot use it as the run directory" in doctor.stderr


def test_doctor_names_an_unknown_toolkit_in_one_line():
    result = CliRunner().invoke(main, ["doctor", "--toolkit", "9.9"])
    assert result.exit_code == 2 and result.stderr.startswith("tltpipe: error: --toolkit 9.9: unknown toolkit version")


def test_a_report_file_that_cannot_be_written_is_one_line(tmp_path):
    run = tmp_path / "run"
    save_manifest(run, Manifest(tltpipe="0", name="lpd", network="ssd", toolkit="5.0"))
    (run / "report" / "metrics.json").mkdir(parents=True)  # a folder where the file goes
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 2 and "metrics.json: cannot write the report" in result.stderr
    assert "Traceback" not in result.output


def test_a_folder_where_the_run_writes_a_file_is_one_line_exit_2(emulated_config, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "config.yaml").mkdir(parents=True)  # once an IsADirectoryError traceback
    args = ["run", "ssd", "--config", str(tmp_path / "lpd.yaml"), "--run-dir", str(run_dir)]
    result = CliRunner().invoke(main, args, env={"TLTPIPE_KEY": "s3cr3t-k3y"})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == f"tltpipe: error: {run_dir / 'config.yaml'}: Is a directory"
    assert "Traceback" not in result.output and not list(run_dir.glob(".config.yaml.*"))


def test_a_config_that_is_a_fifo_a_device_or_a_folder_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "lpd.yaml")  # no writer: reading it once waited forever
    for path, kind in ((tmp_path / "lpd.yaml", "a FIFO"), ("/dev/zero", "a device or socket"), (tmp_path, "a folder")):
        result = CliRunner().invoke(main, ["run", "ssd", "--config", str(path), "--dry-run"])
        assert result.exit_code == 2 and result.stderr.strip() == f"tltpipe: error: {path}: {kind}, not a file"


def test_a_folder_given_as_the_pretrained_weights_is_refused_by_a_plan_and_a_run(write_config, tmp_path):
    (tmp_path / "weights").mkdir()  # once accepted: train failed in the container, minutes later
    config = write_config(extra="model: {arch: resnet, nlayers: 18, input_width: 320, input_height: 320, "
                                "pretrained: weights}\n")
    for extra in (["--dry-run"], []):
        result = CliRunner().invoke(main, ["run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "run"),
                                           *extra], env={"TLTPIPE_KEY": "s3cr3t-k3y"})
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (f"tltpipe: error: {config}: model.pretrained: {tmp_path / 'weights'} is a "
                                         "folder; name the file in it")


def test_ctrl_c_after_the_plan_and_before_a_stage_starts_is_exit_130(emulated_config, tmp_path, monkeypatch):
    from tlt_pipe.pipeline import Pipeline

    def interrupted(self, steps):
        raise KeyboardInterrupt  # Ctrl-C while the images are checked: once "Aborted!" and exit 1

    monkeypatch.setattr(Pipeline, "_ensure_images", interrupted)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "ssd", "--config", str(tmp_path / "lpd.yaml"), "--run-dir", str(run_dir)],
                                env={"TLTPIPE_KEY": "s3cr3t-k3y"})
    assert result.exit_code == 130 and result.stderr.strip().splitlines()[-1] == "tltpipe: interrupted"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert not any(record["status"] == "running" for record in manifest["stages"].values())
