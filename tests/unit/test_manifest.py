from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from tlt_pipe.errors import ConfigError, RunLocked
from tlt_pipe.manifest import Manifest, StageRecord, load_manifest, save_manifest
from tlt_pipe.runlock import RunLock


def test_manifest_round_trips_and_leaves_no_temp_files(tmp_path):
    manifest = Manifest(tltpipe="0.1.0", name="lpd", network="ssd", toolkit="5.0")
    manifest.stages["train"] = StageRecord(status="succeeded", metrics={"mAP": 0.5}, argv=["ssd", "train", "-k", "***"])
    save_manifest(tmp_path, manifest)
    save_manifest(tmp_path, manifest)
    assert load_manifest(tmp_path).stages["train"].metrics == {"mAP": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert json.loads((tmp_path / "manifest.json").read_text())["stages"]["train"]["status"] == "succeeded"


def test_a_damaged_manifest_is_one_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text('{"tltpipe": "0.1", "stages": {')
    with pytest.raises(ConfigError) as info:
        load_manifest(tmp_path)
    assert "manifest.json: not a valid tltpipe manifest" in str(info.value)
    assert "--force" in str(info.value) and "\n" not in str(info.value)


def _hold(run_dir, ready, release):
    with RunLock(run_dir):
        ready.set()
        release.wait(10)


def test_second_run_on_a_directory_is_refused_with_the_holder_pid(tmp_path):
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(RunLocked) as info:
            with RunLock(tmp_path):
                pass
        assert f"pid {holder.pid}" in str(info.value) and info.value.exit_code == 4
    finally:
        release.set()
        holder.join(10)
    with RunLock(tmp_path):  # released when the holder ends
        pass


def test_a_stale_lock_file_from_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text("999999\n")
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


@pytest.mark.parametrize("record, named", [
    ({"status": "succeeded", "metrics": {"mAP": "high"}}, "stages.evaluate.metrics: mAP: expected a number"),
    ({"status": "succeeded", "metrics": {"mAP": 0.5, "ap": "lpd"}}, "stages.evaluate.metrics: ap: expected class"),
    ({"status": "succeeded", "metrics": {"ap": {"lpd": [1]}}}, "stages.evaluate.metrics: ap: expected class"),
    ({"status": "succeeded", "artifacts": {"model": 5}}, "stages.evaluate.artifacts: model: expected a path"),
])
def test_a_manifest_with_wrongly_typed_fields_is_refused_naming_the_field(tmp_path, record, named):
    from click.testing import CliRunner

    from tlt_pipe.cli import main

    (tmp_path / "manifest.json").write_text(json.dumps({"tltpipe": "0", "name": "a", "network": "ssd", "toolkit": "5.0",
                                                        "stages": {"evaluate": record}}))
    with pytest.raises(ConfigError, match=f"not a valid tltpipe manifest \\({named}"):
        load_manifest(tmp_path)
    for command in (["show", str(tmp_path)], ["report", str(tmp_path)], ["compare", str(tmp_path), str(tmp_path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2 and named in result.stderr and "Traceback" not in result.output, command
    nan = {"tltpipe": "0", "name": "a", "network": "ssd", "toolkit": "5.0",
           "stages": {"evaluate": {"status": "succeeded", "metrics": {"mAP": float("nan"), "ap": {"lpd": float("nan")}}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(nan))
    for command in (["show", str(tmp_path)], ["report", str(tmp_path)], ["show", str(tmp_path), "--json"]):
        assert CliRunner().invoke(main, command).exit_code == 0, command  # NaN is a number: shown as nan / null


@pytest.mark.parametrize("target", ["elsewhere/manifest.json", "manifest.json"])  # missing, or a loop
def test_a_manifest_link_that_leads_nowhere_is_an_error_not_a_fresh_run(tmp_path, target):
    (tmp_path / "manifest.json").symlink_to(target)
    with pytest.raises(ConfigError) as info:
        load_manifest(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'manifest.json'}: a link to {target}, which cannot be read")
    assert (tmp_path / "manifest.json").is_symlink()  # left as it was


def test_a_manifest_that_is_a_fifo_is_named_not_waited_on(tmp_path):
    import os

    os.mkfifo(tmp_path / "manifest.json")  # no writer: reading it once waited forever
    with pytest.raises(ConfigError) as info:
        load_manifest(tmp_path)
    assert str(info.value) == f"{tmp_path / 'manifest.json'}: a FIFO, not a file"


def test_a_folder_in_place_of_the_lock_file_is_named(tmp_path):
    (tmp_path / ".lock").mkdir()
    with pytest.raises(ConfigError) as info:
        with RunLock(tmp_path):
            pass
    assert str(info.value) == f"{tmp_path / '.lock'}: a folder where tltpipe keeps the run's lock file; move it away"
