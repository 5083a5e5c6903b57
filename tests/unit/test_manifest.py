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
