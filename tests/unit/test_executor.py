"""The executor with a fake runner, in process: skip, a changed value re-running what depends on it,
failure, interruption, resume, and adoption of a job a dead tltpipe left running.

The fake runner runs each task by calling the TAO emulator's entry point in this process (no Docker,
no subprocess), so the stages see the files and logs real TAO leaves; the runner-level faults (Ctrl-C
in the middle of a task, a job found after a crash) are the fake's own."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from pathlib import Path

import pytest

import tlt_pipe
from tlt_pipe.api import Quiet
from tlt_pipe.datasets.sample import sample_crpd
from tlt_pipe.errors import Interrupted, StageFailed
from tlt_pipe.fingerprint import digest_of
from tlt_pipe.manifest import load_manifest, save_manifest
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import Selection
from tlt_pipe.runners.base import JobEnd, JobInfo
from tlt_pipe.secrets import redact
from tlt_pipe.task import RunResult, Task

EMULATOR = Path(__file__).resolve().parents[1] / "emulator"
KEY = "s3cr3t-k3y"
TOOLKIT = "3.21.11"


@pytest.fixture(autouse=True)
def emulated_tao(monkeypatch):
    monkeypatch.syspath_prepend(str(EMULATOR))
    monkeypatch.setenv("TAO_EMU_VERSION", TOOLKIT)
    monkeypatch.setenv("TAO_EMU_ROLE", "tf")
    monkeypatch.setenv("TAO_EMU_EPOCH_SECONDS", "0")


class FakeRunner:
    """Runs a task by calling the emulator in process. interrupt_in: the stage during which Ctrl-C
    arrives (after its first epochs are written); jobs: what find_jobs reports (left by a dead tltpipe)."""

    def __init__(self, interrupt_in: str | None = None):
        self.ran: list[str] = []
        self.interrupt_in = interrupt_in
        self.jobs: dict[str, tuple[JobInfo, tuple[int, str, bool]]] = {}
        self.removed: list[str] = []

    def run(self, task: Task, *, log_path: Path, labels: Mapping[str, str], on_line=None, on_progress=None):
        stage = labels["tltpipe.stage"]
        self.ran.append(stage)
        code, text = self.execute(task)
        with open(log_path, "a", encoding="utf-8") as log:
            for line in text.splitlines():
                log.write(line + "\n")
                if on_line:
                    on_line(line)
        if stage == self.interrupt_in:
            weights = log_path.parents[1] / stage / "weights"
            for newest in sorted(weights.iterdir())[2:]:  # Ctrl-C after two checkpoints
                newest.unlink()
            raise KeyboardInterrupt
        return RunResult(exit_code=code, image_id="sha256:emulated", log_path=log_path)

    @staticmethod
    def execute(task: Task) -> tuple[int, str]:
        from tao_emulator.main import entry

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                entry(task.argv[0], list(task.argv[1:]))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return code, redact(out.getvalue(), task.secrets)

    def image_id(self, image: str) -> str | None:
        return "sha256:emulated"

    def ensure_image(self, image: str, on_line=None) -> str:
        return "sha256:emulated"

    def find_jobs(self, labels=None) -> list[JobInfo]:
        return [info for info, _ in self.jobs.values()
                if all(info.labels.get(k) == v for k, v in (labels or {}).items())]

    def wait_job(self, job_id: str, secrets=()) -> JobEnd:
        code, text, oom = self.jobs[job_id][1]
        return JobEnd(code, text, oom, {"runner": "fake", "id": job_id, "state": "COMPLETED", "exit_code": code})

    def remove_job(self, job_id: str) -> None:
        self.removed.append(job_id)
        self.jobs.pop(job_id, None)


@pytest.fixture
def config(tmp_path):
    sample_crpd(tmp_path / "crpd", 12, 0)
    (tmp_path / "resnet_18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
    path = tmp_path / "lpd.yaml"
    path.write_text(f"network: ssd\ntoolkit: '{TOOLKIT}'\nname: lpd\n"
                    "dataset: {format: crpd, path: crpd, classes: {lpd: lpd}, val_split: 25}\n"
                    "model: {input_width: 320, input_height: 320, pretrained: resnet_18.hdf5}\n"
                    "train: {epochs: 4, batch_size: 4, validation_period: 2}\nretrain: {epochs: 2}\n"
                    "runner: {kind: local}\n", encoding="utf-8")
    return tlt_pipe.load_config(path)


def _run(config, run_dir, runner, **kwargs):
    return tlt_pipe.run(config, run_dir=run_dir, runner=runner, key=KEY, **kwargs)


def test_a_whole_run_then_every_stage_skipped_and_planned_once(config, tmp_path):
    runner = FakeRunner()
    manifest = _run(config, tmp_path / "run", runner)
    assert runner.ran == ["tfrecords", "train", "evaluate", "prune", "retrain", "evaluate_retrain", "export",
                          "engine", "inference"]
    assert all(r.status == "succeeded" for r in manifest.stages.values())
    assert manifest.stages["evaluate"].metrics["mAP"] is not None
    assert KEY not in (tmp_path / "run" / "manifest.json").read_text(encoding="utf-8")

    again = Pipeline(config, tmp_path / "run", key=KEY, events=Quiet(), runner_factory=lambda: runner)
    again.run(Selection())
    assert runner.ran[9:] == []  # nothing ran the second time
    assert again.planner.planned == len(again.stages)  # each stage planned once, though asked twice


def test_a_changed_value_reruns_that_stage_and_what_depends_on_it(config, tmp_path):
    runner = FakeRunner()
    _run(config, tmp_path / "run", runner)
    changed = config.model_copy(update={"prune": config.prune.model_copy(update={"threshold": 0.3})})
    runner.ran.clear()
    manifest = _run(changed, tmp_path / "run", runner)
    assert runner.ran == ["prune", "retrain", "evaluate_retrain", "export", "engine", "inference"]
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
