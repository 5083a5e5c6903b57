"""The library API: load_config, plan and run, as a script would call them."""

from __future__ import annotations

import pytest

import tlt_pipe
from tlt_pipe.datasets.sample import sample_crpd
from tlt_pipe.errors import ConfigError


def _config(tmp_path):
    sample_crpd(tmp_path / "crpd", 12, 0)
    (tmp_path / "w.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
    path = tmp_path / "lpd.yaml"
    path.write_text("network: ssd\ntoolkit: '3.21.11'\nname: lpd\n"
                    "dataset: {format: crpd, path: crpd, classes: {lpd: lpd}, val_split: 25}\n"
                    "model: {pretrained: w.hdf5}\n", encoding="utf-8")
    return path


def test_load_config_takes_overrides_like_set(tmp_path):
    config = tlt_pipe.load_config(_config(tmp_path), overrides=["runner.gpus=0", "train.epochs=3"])
    assert (config.runner.gpus, config.train.epochs) == (0, 3)
    with pytest.raises(ConfigError, match="train.epochs"):
        tlt_pipe.load_config(_config(tmp_path), overrides=["train.epochs=zero"])


def test_plan_shows_every_stage_with_real_paths_and_starts_nothing(tmp_path):
    config = tlt_pipe.load_config(_config(tmp_path))
    steps = tlt_pipe.plan(config, run_dir=tmp_path / "run", key="k3y")
    assert [s.name for s in steps][:3] == ["prepare", "tfrecords", "train"]
    assert all(s.action == "run" for s in steps) and not (tmp_path / "run").exists()
    engine = next(s for s in steps if s.name == "engine").argv
    assert engine[-1] == "/tltpipe/run/export/ssd.etlt" and "***" in engine and "k3y" not in engine
    assert [s.name for s in tlt_pipe.plan(config, run_dir=tmp_path / "run", stages="prune")] == ["prune"]
    tail = tlt_pipe.plan(config, run_dir=tmp_path / "run", stages=("export", None))
    assert [s.name for s in tail] == ["export", "engine", "evaluate_engine", "inference", "inference_engine", "deepstream"]


def test_run_a_host_stage_and_skip_it_the_second_time(tmp_path):
    config = tlt_pipe.load_config(_config(tmp_path))
    manifest = tlt_pipe.run(config, run_dir=tmp_path / "run", stages="prepare", key="k3y")
    record = manifest.stages["prepare"]
    assert record.status == "succeeded" and record.metrics["train_images"] + record.metrics["val_images"] == 12
    [again] = tlt_pipe.plan(config, run_dir=tmp_path / "run", stages="prepare")
    assert again.action == "skip" and again.reason.startswith("up to date")


def test_runner_kind_picks_the_runner_and_the_paths(tmp_path):
    from tlt_pipe.runners import runner_for
    from tlt_pipe.runners.docker import DockerRunner
    from tlt_pipe.runners.local import LocalRunner

    docker = tlt_pipe.load_config(_config(tmp_path))
    local = tlt_pipe.load_config(_config(tmp_path), overrides=["runner.kind=local"])
    assert isinstance(runner_for(docker), DockerRunner) and isinstance(runner_for(local), LocalRunner)
    [train] = tlt_pipe.plan(local, run_dir=tmp_path / "run", stages="train", key="s3cret-k3y")
    assert train.argv[train.argv.index("-r") + 1] == str((tmp_path / "run" / "train").resolve())
    assert train.argv[train.argv.index("-m") + 1] == str(tmp_path / "w.hdf5")
    with pytest.raises(ConfigError, match="runner.kind"):
        tlt_pipe.load_config(_config(tmp_path), overrides=["runner.kind=kubernetes"])


def test_an_up_to_date_run_walks_each_folder_once(tmp_path, monkeypatch):
    """The skip decision fingerprints the dataset and the prepared copy once per command, however
    often planning asks (a 300,000-image dataset is walked once, not four times)."""
    from collections import Counter

    from tlt_pipe import fingerprint

    config = tlt_pipe.load_config(_config(tmp_path))
    tlt_pipe.run(config, run_dir=tmp_path / "run", stages="prepare", key="k3y")
    walked: Counter = Counter()
    original = fingerprint.tree_fingerprint

    def counting(root):
        walked[str(root)] += 1
        return original(root)

    monkeypatch.setattr(fingerprint, "tree_fingerprint", counting)
    monkeypatch.setattr(fingerprint.os, "cpu_count", lambda: 1)  # walked here, where the counter is
    manifest = tlt_pipe.run(config, run_dir=tmp_path / "run", stages="prepare", key="k3y")
    assert manifest.stages["prepare"].status == "succeeded"
    assert walked and set(walked.values()) == {1}, walked


def test_the_folders_a_decision_needs_are_walked_side_by_side(tmp_path, monkeypatch):
    """The dataset and its prepared copy are fingerprinted together up front, in worker processes,
    with the digests a walk one by one gives."""
    from tlt_pipe import fingerprint

    config = tlt_pipe.load_config(_config(tmp_path))
    tlt_pipe.run(config, run_dir=tmp_path / "run", stages="prepare", key="k3y")
    batches = []
    original = fingerprint.tree_fingerprints

    def recording(roots):
        batches.append(sorted(map(str, roots)))
        found = original(roots)
        assert found == {str(r): fingerprint.tree_fingerprint(r) for r in roots}
        return found

    monkeypatch.setattr("tlt_pipe.planner.tree_fingerprints", recording)
    monkeypatch.setattr(fingerprint.os, "cpu_count", lambda: 2)
    [step] = tlt_pipe.plan(config, run_dir=tmp_path / "run", stages="prepare")
    assert step.action == "skip"
    assert batches[0] == sorted([str(tmp_path / "crpd"), str((tmp_path / "run" / "data" / "kitti").resolve())])


def test_the_library_offers_sweep():
    import tlt_pipe
    from tlt_pipe.api import sweep

    assert tlt_pipe.sweep is sweep and "sweep" in tlt_pipe.__all__
