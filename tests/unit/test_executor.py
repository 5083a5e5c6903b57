"""The executor with a fake runner, in process (fake_runner.py): skip, a changed value re-running what depends
on it, failure, interruption, resume, adoption of a job a dead tltpipe left running, stages side by side, and
a job the scheduler took away."""

from __future__ import annotations

import pytest

import tlt_pipe
from tlt_pipe.api import Quiet
from tlt_pipe.errors import ConfigError, Interrupted, StageFailed
from tlt_pipe.fingerprint import digest_of
from tlt_pipe.manifest import load_manifest, save_manifest
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import Selection
from tlt_pipe.runners.base import JobInfo
from tlt_pipe.task import Task

from fake_runner import KEY, FakeRunner

pytestmark = pytest.mark.usefixtures("emulated_tao")


@pytest.fixture
def config(emulated_config):
    return emulated_config


def _run(config, run_dir, runner, **kwargs):
    return tlt_pipe.run(config, run_dir=run_dir, runner=runner, key=KEY, **kwargs)


def test_a_whole_run_then_every_stage_skipped_and_planned_once(config, tmp_path):
    runner = FakeRunner()
    manifest = _run(config, tmp_path / "run", runner)
    assert runner.ran == ["tfrecords", "train", "evaluate", "prune", "retrain", "evaluate_retrain", "export",
                          "engine", "evaluate_engine", "inference", "inference_engine"]
    assert all(r.status == "succeeded" for r in manifest.stages.values())
    engine, measured = manifest.stages["engine"].metrics, manifest.stages["evaluate_engine"].metrics
    assert engine["provenance"]["gpu"] == "fake GPU" and engine["provenance"]["tensorrt"] == "8.6.1"
    assert engine["provenance"]["precision"] == "fp32" and engine["provenance"]["max_batch_size"] == 16
    assert measured["model_mAP"] == manifest.stages["evaluate_retrain"].metrics["mAP"]
    assert measured["mAP_drop"] == round(measured["model_mAP"] - measured["mAP"], 6)
    assert manifest.stages["inference_engine"].metrics["images"] > 0
    assert not manifest.stages["evaluate_engine"].warnings  # built and run on the same GPU
    assert manifest.stages["evaluate"].metrics["mAP"] is not None
    assert manifest.stages["deepstream"].metrics["output_blobs"] == "NMS"  # the bundle, on the host
    assert (tmp_path / "run" / "deepstream" / "deepstream_app.txt").is_file()
    assert KEY not in (tmp_path / "run" / "manifest.json").read_text(encoding="utf-8")

    again = Pipeline(config, tmp_path / "run", key=KEY, events=Quiet(), runner_factory=lambda: runner)
    again.run(Selection())
    assert runner.ran[11:] == []  # nothing ran the second time
    assert again.planner.planned == len(again.stages)  # each stage planned once, though asked twice


def test_a_run_directory_moved_or_copied_is_judged_by_its_own_outputs(config, tmp_path):
    import shutil

    runner = FakeRunner()
    _run(config, tmp_path / "run", runner)
    shutil.copytree(tmp_path / "run", tmp_path / "copy", symlinks=True)  # copy2: the files keep their times
    shutil.move(tmp_path / "run", tmp_path / "moved")
    steps = tlt_pipe.plan(config, run_dir=tmp_path / "moved", key=KEY)
    assert [s.action for s in steps] == ["skip"] * len(steps), [(s.name, s.reason) for s in steps]
    shutil.rmtree(tmp_path / "copy" / "engine")
    steps = {s.name: s for s in tlt_pipe.plan(config, run_dir=tmp_path / "copy", key=KEY)}
    assert steps["engine"].action == "run" and "is missing" in steps["engine"].reason
    assert str(tmp_path / "copy" / "engine") in steps["engine"].reason
    assert steps["export"].action == "skip"


def test_resume_epoch_names_an_epoch_of_the_first_training_of_the_selection(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner)
    steps = {s.name: s for s in tlt_pipe.plan(config, run_dir=tmp_path / "run", key=KEY, resume_epoch=1)}
    assert steps["train"].action == "run" and steps["train"].reason.startswith("resuming from epoch 1")
    assert steps["retrain"].action == "run" and steps["retrain"].reason == "after prune runs"  # afresh, after train
    retrain = {s.name: s for s in tlt_pipe.plan(config, run_dir=tmp_path / "run", key=KEY, resume_epoch=1,
                                                 stages=("retrain", None))}
    assert retrain["retrain"].reason.startswith("resuming from epoch 1")


def test_resuming_passes_over_checkpoints_that_are_no_files_and_names_a_damaged_log(config, tmp_path):
    from tlt_pipe.errors import ConfigError

    runner = FakeRunner()
    _run(config, tmp_path / "run", runner)
    weights = tmp_path / "run" / "train" / "weights"
    name = sorted(p.name for p in weights.iterdir())[-1]
    newest = name.rsplit("_epoch_", 1)
    loop = weights / f"{newest[0]}_epoch_098.{newest[1].split('.', 1)[1]}"
    loop.symlink_to(loop)  # a link to itself
    (weights / f"{newest[0]}_epoch_099.{newest[1].split('.', 1)[1]}").mkdir()  # a folder named like one
    steps = {s.name: s for s in tlt_pipe.plan(config, run_dir=tmp_path / "run", key=KEY, resume_epoch=1)}
    assert steps["train"].reason.startswith("resuming from epoch 1")
    log = next((tmp_path / "run" / "train").glob("*.csv"))
    log.write_text("epoch,loss\n1,2,3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{log.name}: cannot read this training log, which resuming needs"):
        tlt_pipe.plan(config, run_dir=tmp_path / "run", key=KEY, resume_epoch=1)


def test_a_changed_value_reruns_that_stage_and_what_depends_on_it(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner)
    changed = config.model_copy(update={"prune": config.prune.model_copy(update={"threshold": 0.3})})
    runner.ran.clear()
    manifest = _run(changed, tmp_path / "run", runner)
    assert runner.ran == ["prune", "retrain", "evaluate_retrain", "export", "engine", "evaluate_engine", "inference",
                          "inference_engine"]
    assert "-pth" in manifest.stages["prune"].argv and "0.3" in manifest.stages["prune"].argv
    assert manifest.stages["prune"].reason.startswith("changed: argv")


def test_a_failed_stage_stops_the_run_and_runs_again_next_time(config, tmp_path, monkeypatch):
    runner = FakeRunner()
    monkeypatch.setenv("TAO_EMU_FAIL_SUBCOMMAND", "prune")
    with pytest.raises(StageFailed, match="stage prune failed with exit code"):
        _run(config, tmp_path / "run", runner)
    manifest = load_manifest(tmp_path / "run")
    assert manifest.stages["prune"].status == "failed" and "retrain" not in manifest.stages
    monkeypatch.delenv("TAO_EMU_FAIL_SUBCOMMAND")
    runner.ran.clear()
    manifest = _run(config, tmp_path / "run", runner)
    assert runner.ran[0] == "prune" and manifest.stages["prune"].reason == "last attempt failed"
    assert manifest.stages["inference"].status == "succeeded"


def test_an_interrupted_training_resumes_from_its_newest_checkpoint(config, tmp_path):
    runner = FakeRunner(interrupt_in="train")
    with pytest.raises(Interrupted) as stopped:
        _run(config, tmp_path / "run", runner, stages=(None, "train"))
    assert stopped.value.exit_code == 130
    assert load_manifest(tmp_path / "run").stages["train"].status == "interrupted"

    [train] = tlt_pipe.plan(config, run_dir=tmp_path / "run", stages="train", resume=True, key=KEY)
    assert train.action == "run" and train.reason.startswith("resuming from epoch 2")
    runner.interrupt_in = None
    manifest = _run(config, tmp_path / "run", runner, stages="train", resume=True)
    record = manifest.stages["train"]
    assert record.status == "succeeded" and record.resumed_from["epoch"] == 2
    assert record.metrics["epochs"] == 4  # the epochs before the resume are kept in the history


def test_a_job_left_running_by_a_dead_tltpipe_is_adopted(config, tmp_path):
    runner = FakeRunner()
    run_dir = (tmp_path / "run").resolve()
    _run(config, run_dir, runner, stages=(None, "tfrecords"))
    # A tltpipe started train, then died: the manifest says running, the job is still there.
    [train] = tlt_pipe.plan(config, run_dir=run_dir, stages="train", key=KEY)
    for rel, spec in train.plan.specs.items():
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / rel).write_text(spec, encoding="utf-8")
    code, text = runner.execute(Task(image="", argv=tuple(train.plan.argv), secrets=(KEY,)))
    manifest = load_manifest(run_dir)
    manifest.stages["train"] = manifest.record("train").model_copy(update={
        "status": "running", "log": "logs/train.log", "inputs": dict(train.parts), "fingerprint": digest_of(train.parts)})
    save_manifest(run_dir, manifest)
    job = JobInfo(id="job-1", name="lpd-train", status="running",
                  labels={"tltpipe.run": str(run_dir), "tltpipe.stage": "train"})
    runner.jobs["job-1"] = (job, (code, text, False))
    runner.ran.clear()

    manifest = _run(config, run_dir, runner, stages="train")
    record = manifest.stages["train"]
    assert runner.ran == [] and runner.removed == ["job-1"]  # adopted, not run again
    assert record.status == "succeeded" and record.reason == "adopted from an earlier tltpipe process"
    assert record.artifacts["model"].startswith("train/weights/")
    assert record.job == {"runner": "fake", "id": "job-1", "state": "COMPLETED", "exit_code": 0}
    assert (run_dir / "logs" / "train.log").read_bytes().decode() == text  # the job's whole output


def test_force_stops_a_left_job_instead_of_adopting_it(config, tmp_path):
    runner = FakeRunner()
    run_dir = (tmp_path / "run").resolve()
    _run(config, run_dir, runner, stages="prepare")
    manifest = load_manifest(run_dir)
    manifest.stages["tfrecords"] = manifest.record("tfrecords").model_copy(update={"status": "running"})
    save_manifest(run_dir, manifest)
    runner.jobs["job-2"] = (JobInfo(id="job-2", name="lpd-tfrecords", status="running",
                                    labels={"tltpipe.run": str(run_dir), "tltpipe.stage": "tfrecords"}),
                            (0, "", False))
    manifest = _run(config, run_dir, runner, stages="tfrecords", force=True)
    assert runner.removed == ["job-2"] and runner.ran == ["tfrecords"]
    assert manifest.stages["tfrecords"].status == "succeeded"


def test_no_stage_reads_an_artifact_it_does_not_declare(config, tmp_path):
    """Stage.reads is what `needs` is derived from, so reading anything else is refused."""
    from tlt_pipe.planner import build_context, stages_for
    from tlt_pipe.stages import UndeclaredRead, export, prepare

    prune = next(s for s in stages_for(config) if s.name == "prune")
    ctx = build_context(config, tmp_path / "run", None, KEY, stage=prune)
    with pytest.raises(UndeclaredRead, match="export.model"):
        ctx.read(export.MODEL)
    assert build_context(config, tmp_path / "run", None, KEY).read(prepare.CLASSES) == "<prepare.classes>"


def _with_runner(config, **runner):
    return config.model_copy(update={"runner": config.runner.model_copy(update=runner)})


def test_independent_stages_run_side_by_side_up_to_jobs(config, tmp_path):
    runner = FakeRunner(meet=("evaluate", "prune"))  # each waits for the other: only side by side they pass
    manifest = _run(_with_runner(config, jobs=2), tmp_path / "run", runner)
    assert all(r.status == "succeeded" for r in manifest.stages.values())
    assert runner.most == 2
    assert runner.ran.index("retrain") > runner.ran.index("prune")  # what depends on prune waits for it
    assert list(manifest.stages) == ["prepare", "tfrecords", "train", "evaluate", "prune", "retrain",
                                     "evaluate_retrain", "export", "engine", "evaluate_engine", "inference",
                                     "inference_engine", "deepstream"]  # run order

    one = FakeRunner()
    _run(config, tmp_path / "sequential", one)
    assert one.most == 1  # by default (no list of GPUs): one stage at a time


def test_with_a_list_of_gpus_each_stage_side_by_side_gets_one(config, tmp_path):
    runner = FakeRunner(meet=("evaluate", "prune"))
    manifest = _run(_with_runner(config, gpus=[0, 1]), tmp_path / "run", runner)  # two GPUs: two at a time
    assert {runner.tasks["evaluate"].gpus, runner.tasks["prune"].gpus} == {(0,), (1,)}
    assert {tuple(manifest.stages[n].gpus) for n in ("evaluate", "prune")} == {(0,), (1,)}
    assert runner.most == 2


def test_a_failure_starts_nothing_more_and_lets_the_running_stages_finish(config, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_EMU_FAIL_SUBCOMMAND", "prune")
    runner = FakeRunner(meet=("evaluate", "prune"))
    with pytest.raises(StageFailed, match="stage prune failed"):
        _run(_with_runner(config, jobs=2), tmp_path / "run", runner)
    manifest = load_manifest(tmp_path / "run")
    assert manifest.stages["prune"].status == "failed"
    assert manifest.stages["evaluate"].status == "succeeded" and manifest.stages["evaluate"].metrics["mAP"] is not None
    assert "retrain" not in runner.ran and "retrain" not in manifest.stages


def test_ctrl_c_stops_every_stage_running_side_by_side(config, tmp_path):
    runner = FakeRunner(interrupt_in="prune", hold=("evaluate",))
    with pytest.raises(Interrupted, match="interrupted during evaluate, prune") as stopped:
        _run(_with_runner(config, jobs=2), tmp_path / "run", runner)
    assert stopped.value.exit_code == 130
    assert sorted(runner.cancelled) == ["evaluate", "prune"]
    manifest = load_manifest(tmp_path / "run")
    assert manifest.stages["evaluate"].status == manifest.stages["prune"].status == "interrupted"
    assert "retrain" not in manifest.stages


def test_a_training_job_the_scheduler_took_away_continues_from_its_newest_checkpoint(config, tmp_path):
    runner = FakeRunner(requeue=("train",))
    manifest = _run(config, tmp_path / "run", runner, stages=(None, "train"))
    record = manifest.stages["train"]
    assert runner.ran.count("train") == 2
    assert record.status == "succeeded" and record.resumed_from["epoch"] == 2
    assert record.job["requeued"] == [{"runner": "fake", "id": "1", "state": "REQUEUED"}]
    assert record.metrics["epochs"] == 4  # the epochs before the requeue are kept in the history
    log = (tmp_path / "run" / "logs" / "train.log").read_text(encoding="utf-8")
    assert "tltpipe: Slurm requeued the job; running train again from epoch 2" in log


def test_retries_are_bounded(config, tmp_path):
    runner = FakeRunner(requeue=("train",) * 3)
    limited = config.model_copy(update={"runner": config.runner.model_copy(
        update={"slurm": config.runner.slurm.model_copy(update={"retries": 1})})})
    with pytest.raises(StageFailed, match="stage train failed with exit code 143"):
        _run(limited, tmp_path / "run", runner, stages=(None, "train"))
    assert runner.ran.count("train") == 2
    assert "no retries left (runner.slurm.retries: 1)" in (tmp_path / "run" / "logs" / "train.log").read_text()


def test_a_run_directory_of_another_network_or_toolkit_is_refused_before_anything_changes(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=("prepare", "train"))
    before = (tmp_path / "run" / "manifest.json").read_bytes()
    for other in (config.model_copy(update={"network": "dssd"}), config.model_copy(update={"toolkit": "4.0.0"})):
        for attempt in (lambda: _run(other, tmp_path / "run", runner, stages=("train", "train"), force=True),
                        lambda: tlt_pipe.plan(other, run_dir=tmp_path / "run", key=KEY)):
            with pytest.raises(ConfigError, match=rf"{tmp_path / 'run'}: holds a ssd run on TAO 3.21.11 "
                                                  r"\(manifest.json\); this config is (dssd|ssd) on TAO"):
                attempt()
    assert (tmp_path / "run" / "manifest.json").read_bytes() == before and runner.ran == ["tfrecords", "train"]


def test_a_spec_deleted_or_edited_after_its_stage_ran_is_written_back_for_the_stage_that_reads_it(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=("prepare", "train"))
    spec = tmp_path / "run" / "specs" / "train.txt"
    rendered = spec.read_text(encoding="utf-8")
    spec.unlink()  # once: train skipped, evaluate failed in its container on the missing -e file
    manifest = _run(config, tmp_path / "run", runner, stages=("evaluate", "evaluate"))
    assert runner.ran == ["tfrecords", "train", "evaluate"] and manifest.stages["evaluate"].status == "succeeded"
    assert spec.read_text(encoding="utf-8") == rendered
    spec.write_text(rendered.replace("batch_size", "batch_size_edited"), encoding="utf-8")
    _run(config, tmp_path / "run", runner, stages=("evaluate", "evaluate"), force=True)
    assert spec.read_text(encoding="utf-8") == rendered and runner.ran[3:] == ["evaluate"]
    manifest = load_manifest(tmp_path / "run")  # an edited manifest pointing outside the run is not followed
    outside = {"path": "../outside.txt", "sha256": manifest.stages["train"].specs[0]["sha256"]}
    manifest.stages["train"].specs += [outside, {**outside, "path": "/"}]
    save_manifest(tmp_path / "run", manifest)
    _run(config, tmp_path / "run", runner, stages=("evaluate", "evaluate"), force=True)
    assert not (tmp_path / "outside.txt").exists() and runner.ran[4:] == ["evaluate"]


def test_a_re_run_that_fails_keeps_the_last_good_outputs_until_a_run_succeeds(config, tmp_path, monkeypatch):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=("prepare", "export"))
    export = tmp_path / "run" / "export"
    good = {p.relative_to(export): p.read_bytes() for p in export.rglob("*") if p.is_file()}
    assert good
    monkeypatch.setenv("TAO_EMU_FAIL_SUBCOMMAND", "export")  # once: the forced re-run deleted export/ first
    with pytest.raises(StageFailed, match="stage export failed"):
        _run(config, tmp_path / "run", runner, stages=("export", "export"), force=True)
    kept = tmp_path / "run" / ".previous" / "export" / "export"
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()} == good
    record = load_manifest(tmp_path / "run").stages["export"]
    assert record.status == "failed" and record.warnings == [
        f"the outputs of its last successful run are kept in {kept.parent}"]
    with pytest.raises(StageFailed):  # failing again: what is kept is still the last good result
        _run(config, tmp_path / "run", runner, stages=("export", "export"))
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()} == good
    monkeypatch.delenv("TAO_EMU_FAIL_SUBCOMMAND")
    manifest = _run(config, tmp_path / "run", runner, stages=("export", "export"))
    assert manifest.stages["export"].status == "succeeded" and not manifest.stages["export"].warnings
    assert not (tmp_path / "run" / ".previous").exists()
    assert {p.relative_to(export) for p in export.rglob("*") if p.is_file()} == set(good)


def test_a_forced_training_stopped_then_resumed_keeps_the_last_good_one_until_it_succeeds(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=(None, "train"))
    weights = sorted(p.name for p in (tmp_path / "run" / "train").rglob("*.hdf5"))
    runner.interrupt_in = "train"
    with pytest.raises(Interrupted):
        _run(config, tmp_path / "run", runner, stages="train", force=True)
    kept = tmp_path / "run" / ".previous" / "train" / "train"
    assert sorted(p.name for p in kept.rglob("*.hdf5")) == weights  # the finished training, whole
    runner.interrupt_in = None
    manifest = _run(config, tmp_path / "run", runner, stages="train", resume=True)  # from the stopped run's epoch 2
    assert manifest.stages["train"].status == "succeeded" and manifest.stages["train"].resumed_from["epoch"] == 2
    assert not (tmp_path / "run" / ".previous").exists()  # the new training replaces the kept one


def test_resume_epoch_on_a_selection_that_trains_nothing_is_refused(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=("prepare", "evaluate"))
    for stages in (("evaluate", "evaluate"), ("export", None)):  # once silently ignored
        with pytest.raises(ConfigError, match=rf"--resume-epoch 1: it names an epoch of a training \(train or "
                                              rf"retrain\), and the selection \({stages[0]} to \w+\) trains nothing"):
            tlt_pipe.plan(config, run_dir=tmp_path / "run", key=KEY, stages=stages, resume_epoch=1)
    with pytest.raises(ConfigError, match="--resume-epoch 1: retrain/weights/ has no checkpoints to resume from"):
        tlt_pipe.plan(config, run_dir=tmp_path / "run", key=KEY, stages=("evaluate", "retrain"), resume_epoch=1)


def test_a_spec_deleted_from_a_moved_run_is_written_back_for_the_new_folder(config, tmp_path):
    import shutil

    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=("prepare", "train"))
    shutil.move(tmp_path / "run", tmp_path / "moved")  # the local runner's specs name the run's own path
    (tmp_path / "moved" / "specs" / "train.txt").unlink()  # once: evaluate failed on the missing -e file
    manifest = _run(config, tmp_path / "moved", runner, stages=("evaluate", "evaluate"))
    assert manifest.stages["evaluate"].status == "succeeded" and runner.ran[2:] == ["evaluate"]
    assert str(tmp_path / "moved") in (tmp_path / "moved" / "specs" / "train.txt").read_text(encoding="utf-8")


def test_a_link_where_tltpipe_keeps_outputs_is_refused_and_nothing_outside_is_touched(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner, stages=("prepare", "export"))
    (tmp_path / "mine" / "export" / "export").mkdir(parents=True)
    (tmp_path / "mine" / "export" / "export" / "keep.txt").write_text("precious")
    (tmp_path / "run" / ".previous").symlink_to(tmp_path / "mine")  # once followed: keep.txt was deleted
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'run' / '.previous'}: a link; tltpipe keeps a stage's last "
                                          "outputs below"):
        _run(config, tmp_path / "run", runner, stages=("export", "export"), force=True)
    assert (tmp_path / "mine" / "export" / "export" / "keep.txt").read_text() == "precious"
    assert (tmp_path / "run" / "export").is_dir() and any((tmp_path / "run" / "export").iterdir())
