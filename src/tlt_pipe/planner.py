"""Planning: what a run does, stage by stage (run or skip, and why), from the config, the manifest and
the files on disk. Pure but for reading the disk; nothing here starts a task.

    Config --stages_for--> (Stage, ...) --Planner.plan--> [Step]  (each with its StagePlan and fingerprint)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tlt_pipe import registry
from tlt_pipe.config import Config
from tlt_pipe.errors import ConfigError
from tlt_pipe.fingerprint import digest_of, path_fingerprint, short, tree_fingerprints
from tlt_pipe.manifest import Manifest, StageRecord, is_run_relative
from tlt_pipe.networks import get_network
from tlt_pipe.secrets import redact_argv
from tlt_pipe.stages import Context, Stage, StagePlan, is_pending
from tlt_pipe.stages import (anchors, calibration, deepstream, engine, engine_eval, evaluate, export, inference, prepare,
                             prune, pytorch_ssd, retrain, tao_pyt, tfrecords, train)
from tlt_pipe.toolkits import get_toolkit
from tlt_pipe.workspace import Workspace

# Every stage of every network, in run order; a network runs the common chain plus its extras.
ALL_STAGES: tuple[Stage, ...] = (
    prepare.STAGE, tfrecords.STAGE, tfrecords.VALIDATION, anchors.STAGE, train.TRAIN, evaluate.EVALUATE,
    prune.STAGE, retrain.STAGE, evaluate.EVALUATE_RETRAIN, calibration.STAGE, export.STAGE, engine.STAGE,
    engine_eval.EVALUATE_ENGINE, inference.STAGE, engine_eval.INFERENCE_ENGINE, deepstream.STAGE,
)
# Per framework (Network.framework): TAO's TF1 chain above, TAO's PyTorch one (stages/tao_pyt.py), or
# pytorch-ssd's (stages/pytorch_ssd.py).
CHAINS: dict[str, tuple[Stage, ...]] = {"tao": ALL_STAGES, "tao_pyt": tao_pyt.STAGES, "pytorch_ssd": pytorch_ssd.STAGES}
# What the CLI accepts (registry.STAGE_NAMES, in this order); stages_for says what a run has.
STAGE_NAMES = registry.STAGE_NAMES
if tuple(n for n in STAGE_NAMES if any(n == s.name for c in CHAINS.values() for s in c)) != STAGE_NAMES or any(
        [s.name for s in c] != [n for n in STAGE_NAMES if n in {s.name for s in c}] for c in CHAINS.values()):
    raise RuntimeError("planner.CHAINS and registry.STAGE_NAMES disagree")  # pragma: no cover - one place only


def stages_for(config: Config) -> tuple[Stage, ...]:
    """The stages a config runs, in order: the common chain plus its network's extras, each with the
    stages it needs (ConfigError when the toolkit does not ship the network)."""
    toolkit = get_toolkit(config.toolkit)
    network = get_network(config.network, toolkit.version)
    if network.framework != "tao":
        return with_needs(CHAINS[network.framework])
    extras = {"tfrecords_val": tfrecords.validation_records(network, toolkit.version), "anchors": anchors.applies(network),
              "calibration_tensorfile": calibration.applies(network, toolkit, config),
              "evaluate_engine": engine_eval.evaluates(network, toolkit)}
    chosen = [anchors.stage_for(config) if s.name == "anchors" else s for s in ALL_STAGES if extras.get(s.name, True)]
    return with_needs(tuple(chosen))


def with_needs(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """Each stage with `needs` derived from what it reads: the stages of this run that produce those
    artifacts, less any another of them already needs (what a stage needs directly)."""
    present = {s.name for s in stages}
    closure: dict[str, set[str]] = {}  # stage -> every stage it needs, transitively
    result = []
    for stage in stages:
        read = list(dict.fromkeys(h.stage for h in stage.reads if h.stage in present and h.stage != stage.name))
        unknown = [n for n in read if n not in closure]
        if unknown:  # pragma: no cover - a stage ordered before what it reads
            raise RuntimeError(f"stage {stage.name} reads {', '.join(unknown)}, which runs after it")
        direct = tuple(n for n in read if not any(n in closure[m] for m in read if m != n))
        closure[stage.name] = set(read).union(*(closure[n] for n in read))
        result.append(replace(stage, needs=direct))
    return tuple(result)


@dataclass(frozen=True)
class Step:
    """One stage as planned: run it or skip it, and why."""

    name: str
    action: Literal["run", "skip"]
    reason: str
    plan: StagePlan
    parts: Mapping[str, Any] = field(default_factory=dict)  # fingerprint parts
    secrets: tuple[str, ...] = field(default=(), repr=False)
    context: Context | None = field(default=None, repr=False, compare=False)  # what it was planned from

    @property
    def argv(self) -> list[str]:
        return redact_argv(self.plan.argv, self.secrets)

    def as_json(self) -> dict[str, Any]:
        return {"stage": self.name, "action": self.action, "reason": self.reason,
                "image": self.plan.image, "argv": self.argv}


@dataclass(frozen=True)
class Selection:
    from_stage: str | None = None
    to_stage: str | None = None
    force: bool = False
    resume: bool = False
    resume_epoch: int | None = None

    def names(self, stages: tuple[Stage, ...]) -> list[str]:
        available = [s.name for s in stages]
        for value in (self.from_stage, self.to_stage):
            if value is not None and value not in STAGE_NAMES:
                raise ConfigError(f"unknown stage {value!r}; stages: {', '.join(STAGE_NAMES)}")
            if value is not None and value not in available:
                raise ConfigError(f"stage {value!r} does not exist for this network and toolkit; "
                                  f"its stages: {', '.join(available)}")
        start = available.index(self.from_stage) if self.from_stage else 0
        end = available.index(self.to_stage) if self.to_stage else len(available) - 1
        if start > end:
            raise ConfigError(f"--from {self.from_stage} comes after --to {self.to_stage}")
        names = available[start:end + 1]
        if self.resume_epoch is not None and resumed_training(self) not in names:
            raise ConfigError(f"--resume-epoch {self.resume_epoch}: it names an epoch of a training (train or "
                              f"retrain), and the selection ({names[0]} to {names[-1]}) trains nothing")
        return names


# --- planning (pure given the manifest and the disk) -------------------------------------------

def workspace_for(config: Config, run_dir: Path) -> Workspace:
    """Where a run's files are, on the host and as its tasks see them."""
    inputs = []
    if config.model.pretrained:
        inputs.append(("pretrained", config.model.pretrained))
    if config.inference.images:
        inputs.append(("images", config.inference.images))
    if config.network == "ssd_mobilenet" and config.pytorch_ssd.repo:
        inputs.append(("pytorch_ssd", config.pytorch_ssd.repo))
        if config.pytorch_ssd.pretrained:
            inputs.append(("pretrained_ssd", config.pytorch_ssd.pretrained))
    return Workspace(run_dir=run_dir, inputs=tuple(inputs), native=config.runner.kind == "local")


TRAININGS = ("train", "retrain")  # the stages that train, in the order they run


def resumed_training(selection: Selection) -> str | None:
    """The training --resume-epoch names an epoch of: the first of the selection (train, or retrain when
    the selection starts after train). The trainings after it start afresh when they run."""
    if selection.resume_epoch is None:
        return None
    start = STAGE_NAMES.index(selection.from_stage) if selection.from_stage in STAGE_NAMES else 0
    return next((name for name in TRAININGS if STAGE_NAMES.index(name) >= start), None)


def build_context(config: Config, run_dir: Path, manifest: Manifest | None, key: str | None,
                  selection: Selection = Selection(), stage: Stage | None = None) -> Context:
    """What a stage sees when planning (stage: the one planned, which may read only what it declares)."""
    toolkit = get_toolkit(config.toolkit)
    done = {n: r for n, r in (manifest.stages.items() if manifest else []) if r.status == "succeeded"}
    resume_epoch = selection.resume_epoch if stage is None or stage.name == resumed_training(selection) else None
    ctx = Context(
        config=config, toolkit=toolkit, network=get_network(config.network, toolkit.version),
        workspace=workspace_for(config, run_dir), key=key,
        artifacts={}, metrics={n: r.metrics for n, r in done.items()},
        statuses={n: r.status for n, r in (manifest.stages.items() if manifest else [])},
        resume=selection.resume or resume_epoch is not None, resume_epoch=resume_epoch,
        readable=frozenset(stage.reads) if stage is not None else None,
    )
    # What each stage promises (paths fixed by the network and toolkit), overlaid by what it recorded.
    promised: dict[str, dict[str, Any]] = {}
    for producer in stages_for(config):
        for handle in producer.produces:
            value = handle.promise(ctx) if handle.promise is not None else None
            if value is not None:
                promised.setdefault(handle.stage, {})[handle.name] = value
    artifacts = {n: {**promised.get(n, {}), **(done[n].artifacts if n in done else {})} for n in {*promised, *done}}
    return replace(ctx, artifacts=artifacts)



RUN_DIR_MARK = "<run>"  # what stands for the run directory's path in a fingerprint


def fingerprint_parts(stage: Stage, plan: StagePlan, ctx: Context, manifest: Manifest | None,
                      trees: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything whose change means the stage must run again (trees: folders walked already)."""
    old = manifest.stages.get(stage.name) if manifest else None
    cache = {v["path"]: v for v in (old.inputs.values() if old else []) if isinstance(v, dict) and "path" in v}
    # The run directory's own path is left out (the local runner's commands and specs name it): a run
    # directory moved, or a sweep point started from a copy of another, is still up to date.
    here = str(ctx.workspace.run_dir)

    def portable(text: str) -> str:
        return text.replace(here, RUN_DIR_MARK)

    parts: dict[str, Any] = {
        "image": plan.image or "host",
        "argv": portable(" ".join(redact_argv(plan.fresh_argv or plan.argv, [ctx.key] if ctx.key else []))),
        "params": digest_of(plan.params),
    }
    if plan.epochs is not None:
        parts["epochs"] = plan.epochs
    specs = plan.fingerprint_specs if plan.fingerprint_specs is not None else plan.specs
    for path, text in specs.items():
        parts[f"spec:{path}"] = digest_of({"text": portable(text)})
    for path in plan.inputs:
        parts[f"input:{path}"] = path_fingerprint(Path(path), cache, trees)
    for rel in plan.run_inputs:
        parts[f"run:{rel}"] = "pending" if is_pending(rel) else path_fingerprint(ctx.workspace.host(rel), cache, trees)
    for need in stage.needs:
        record = manifest.stages.get(need) if manifest else None
        parts[f"upstream:{need}"] = record.fingerprint if record else None
    return parts


def _changed(parts: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(parts) | set(old))
    return [k for k in keys if short(parts.get(k)) != short(old.get(k))]


def recorded_outputs(record: StageRecord, now: Sequence[str | None] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Each output a stage recorded, with the path it has now. A stage records its outputs in the order its
    plan lists them, so the plan's paths in this run directory are theirs: a run directory moved or copied
    is judged by its own files, not by those of the place it was written in. now: those paths (None for
    one the plan does not know yet); a record that does not match the plan keeps its own paths."""
    if now is not None and len(now) == len(record.outputs):
        return [(path or out["path"], out) for path, out in zip(now, record.outputs)]
    return [(out["path"], out) for out in record.outputs]


def _outputs_changed(record: StageRecord, trees: dict[str, str] | None = None,
                     now: Sequence[str | None] | None = None) -> str | None:
    for path, out in recorded_outputs(record, now):
        now_fp = path_fingerprint(Path(path), {path: {**out, "path": path}}, trees)
        if now_fp["kind"] == "missing":
            return f"output {path} is missing"
        if short(now_fp) != short(out):
            return f"output {path} changed since it was written"
    return None


def _now_outputs(ctx: Context, plan: StagePlan) -> list[str | None]:
    """The plan's outputs as paths of this run directory (None for one a run decides)."""
    return [None if is_pending(rel) else str(ctx.workspace.host(rel)) for rel in plan.outputs]


def _extended_epochs(parts: Mapping[str, Any], record: StageRecord | None) -> tuple[int, int] | None:
    """(old, new) epoch counts when a finished training run differs only by a higher epoch count."""
    if record is None or record.status != "succeeded" or "epochs" not in record.inputs:
        return None
    old, new = record.inputs["epochs"], parts.get("epochs")
    if _changed(parts, record.inputs) == ["epochs"] and isinstance(new, int) and new > old:
        return old, new
    return None


def decide(stage: Stage, parts: Mapping[str, Any], record: StageRecord | None, *, force: bool, trees=None,
           upstream_will_run: str | None, outputs: Sequence[str | None] | None = None
           ) -> tuple[Literal["run", "skip"], str]:
    if force:
        return "run", "forced (--force)"
    if upstream_will_run:
        return "run", f"after {upstream_will_run} runs"
    if record is None:
        return "run", "has not run yet"
    if record.status == "pending":
        return "run", record.reason or "has not run yet"
    if record.status != "succeeded":
        return "run", f"last attempt {record.status}"
    changed = _changed(parts, record.inputs)
    if changed:
        return "run", "changed: " + ", ".join(k.replace(":", " ", 1) for k in changed[:4])
    missing = _outputs_changed(record, trees, outputs)
    if missing:
        return "run", missing
    return "skip", f"up to date (inputs and outputs unchanged since {record.ended})"


# --- execution ----------------------------------------------------------------------------------


class Planner:
    """Plans the stages of one config in one run directory.

    Each stage is planned once per command: its step (and the context it was planned from) is kept
    and given again until a stage it depends on has a new record, i.e. has run since. Folder
    fingerprints are remembered for the command too (forget() after a stage may have written), so a
    large unchanged dataset is walked once; the folders a plan will fingerprint are walked side by
    side first (fingerprint.tree_fingerprints)."""

    def __init__(self, config: Config, run_dir: Path, key: str | None):
        self.config = config
        self.run_dir = run_dir
        self.key = key
        self.stages = stages_for(config)
        self._trees: dict[str, str] = {}
        self._upstream: dict[str, tuple[str, ...]] = {}  # stage -> every stage it depends on
        for stage in self.stages:
            self._upstream[stage.name] = tuple(dict.fromkeys(
                n for need in stage.needs for n in (*self._upstream[need], need)))
        self._plans: dict[str, tuple[str, Context, StagePlan]] = {}  # stage -> (state, context, plan)
        self._steps: dict[str, tuple[tuple[str, str | None], Step]] = {}  # stage -> ((state, upstream), step)
        self.planned = 0  # stages planned (not given again): what the memo saves is testable

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def upstream(self, name: str) -> tuple[str, ...]:
        """Every stage this one depends on, directly or not."""
        return self._upstream[name]

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.key,) if self.key else ()

    def forget(self) -> None:
        """Files may have changed (a stage ran): fingerprint folders afresh."""
        self._trees.clear()

    def plan(self, selection: Selection, manifest: Manifest | None) -> list[Step]:
        """The steps of the selection; stages already planned to run make their dependents run too."""
        names = selection.names(self.stages)
        self._walk_ahead([s for s in self.stages if s.name in names], manifest, selection)
        steps: list[Step] = []
        will_run: set[str] = set()
        for stage in self.stages:
            if stage.name not in names:
                continue
            upstream = next((n for n in stage.needs if n in will_run), None)
            step = self.step(stage, manifest, selection, upstream)
            if step.action == "run":
                will_run.add(stage.name)
            steps.append(step)
        return steps

    def step(self, stage: Stage, manifest: Manifest | None, selection: Selection,
             upstream_will_run: str | None) -> Step:
        """Plan one stage against the manifest as it is now (the stages before it may have just run)."""
        key = (self._state(stage, manifest, selection), upstream_will_run)
        kept = self._steps.get(stage.name)
        if kept is not None and kept[0] == key:
            return kept[1]
        step = self._decide(stage, manifest, selection, upstream_will_run)
        self._steps[stage.name] = (key, step)
        return step

    def _state(self, stage: Stage, manifest: Manifest | None, selection: Selection) -> str:
        """What a stage's plan depends on besides the config: the selection and the records of the
        stages it depends on (and its own)."""
        return digest_of({"selection": repr(selection),
                          "records": {n: manifest.stages[n].model_dump(mode="json")
                                      for n in (*self._upstream[stage.name], stage.name)
                                      if manifest is not None and n in manifest.stages}})

    def _planned(self, stage: Stage, manifest: Manifest | None, selection: Selection) -> tuple[Context, StagePlan]:
        """The stage's context and plan, made once per state."""
        state = self._state(stage, manifest, selection)
        kept = self._plans.get(stage.name)
        if kept is not None and kept[0] == state:
            return kept[1], kept[2]
        ctx = build_context(self.config, self.run_dir, manifest, self.key, selection, stage)
        plan = stage.plan(ctx)
        self.planned += 1
        self._plans[stage.name] = (state, ctx, plan)
        return ctx, plan

    def _walk_ahead(self, stages: list[Stage], manifest: Manifest | None, selection: Selection) -> None:
        """Fingerprint, side by side, the folders deciding these stages will look at: their inputs and
        the outputs they recorded. Deciding then finds them walked (a large dataset and its prepared
        copy take half the time)."""
        folders: dict[str, Path] = {}
        for stage in stages:
            ctx, plan = self._planned(stage, manifest, selection)
            record = manifest.stages.get(stage.name) if manifest else None
            paths = [Path(p) for p in plan.inputs]
            paths += [ctx.workspace.host(rel) for rel in plan.run_inputs if not is_pending(rel)]
            paths += [Path(path) for path, out in (recorded_outputs(record, _now_outputs(ctx, plan)) if record else [])
                      if out.get("kind") == "dir"]
            folders.update((str(p), p) for p in paths if str(p) not in self._trees and p.is_dir())
        self._trees.update(tree_fingerprints(list(folders.values())))

    def _decide(self, stage: Stage, manifest: Manifest | None, selection: Selection,
                upstream_will_run: str | None) -> Step:
        ctx, plan = self._planned(stage, manifest, selection)
        parts = fingerprint_parts(stage, plan, ctx, manifest, self._trees)
        record = manifest.stages.get(stage.name) if manifest else None
        action, reason = decide(stage, parts, record, force=selection.force, trees=self._trees,
                                upstream_will_run=upstream_will_run, outputs=_now_outputs(ctx, plan))
        extended = _extended_epochs(parts, record) if action == "run" else None
        if extended is not None:
            longer = stage.plan(replace(ctx, extend=True))
            if longer.resumed_from is not None:
                plan = longer
                reason = (f"epochs raised from {extended[0]} to {extended[1]}: continuing from epoch "
                          f"{plan.resumed_from['epoch']}")
                return Step(stage.name, "run", reason, plan, fingerprint_parts(stage, plan, ctx, manifest, self._trees),
                            self.secrets, ctx)
        if plan.resumed_from is not None and (action == "run" or selection.resume_epoch is not None):
            action, reason = "run", f"resuming from epoch {plan.resumed_from['epoch']} ({plan.resumed_from['reason']})"
        return Step(stage.name, action, reason, plan, parts, self.secrets, ctx)

    def lost_specs(self, running: Sequence[str], manifest: Manifest) -> dict[str, tuple[str, str]]:
        """Spec files that stages about to run read from a finished upstream stage (evaluate reads train's),
        gone or edited since that stage ran: run-relative path -> (stage, text), where rendering the stage
        again gives back the file it recorded: the same sha256, or the same run in another folder (the stage
        is up to date there, as a moved run is). Writing them back spares a re-run."""
        import hashlib

        lost: dict[str, tuple[str, str]] = {}
        for name in dict.fromkeys(n for r in running for n in self._upstream[r] if n not in running):
            record = manifest.stages.get(name)
            if record is None or record.status != "succeeded":
                continue
            changed = [spec for spec in record.specs if is_run_relative(spec.get("path")) and spec.get("sha256")
                       and path_fingerprint(self.run_dir / spec["path"]).get("sha256") != spec["sha256"]]
            if not changed:
                continue
            step = self._decide(self.stage(name), manifest, Selection(), None)
            for spec in changed:
                text = step.plan.specs.get(spec["path"])
                if text is not None and (step.action == "skip"  # up to date: the same run, if in another folder
                                         or hashlib.sha256(text.encode("utf-8")).hexdigest() == spec["sha256"]):
                    lost[spec["path"]] = (name, text)
        return lost

    def upstream_gaps(self, selection: Selection, manifest: Manifest | None) -> dict[str, tuple[str, str]]:
        """Per stage of the selection: the first stage it needs that is neither in the selection nor succeeded
        in the manifest, and that stage's state. A run refuses to start with any."""
        names = selection.names(self.stages)
        gaps: dict[str, tuple[str, str]] = {}
        for stage in self.stages:
            if stage.name not in names:
                continue
            for need in stage.needs:
                record = manifest.stages.get(need) if manifest else None
                if need not in names and (record is None or record.status != "succeeded"):
                    gaps[stage.name] = (need, record.status if record else "never ran")
                    break
        return gaps

    def check_upstream(self, selection: Selection, manifest: Manifest | None) -> None:
        for name, (need, state) in self.upstream_gaps(selection, manifest).items():
            raise ConfigError(f"stage {name} needs {need}, which has not succeeded in {self.run_dir} "
                              f"({state}); run it first (tltpipe stage {need} ...)")
