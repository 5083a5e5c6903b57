"""Stages are declarative: a name, the artifacts it reads and produces, a pure function that plans
the work (argv, specs, inputs, outputs) from the run context, and a function that turns results
into metrics and artifacts for the stages after it. No stage imports docker.

Artifacts are typed handles (`Artifact`): a stage reads `ctx.read(prune.MODEL)`, never a string key,
and what it may read is declared (`Stage.reads`), so the stages it needs follow from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_pipe.config import Config
from tlt_pipe.networks import Network
from tlt_pipe.toolkits import Toolkit, task_command
from tlt_pipe.workspace import Workspace


@dataclass(frozen=True)
class Artifact:
    """A handle on one thing a stage produces: the producing stage and the name it is recorded under
    in the manifest (its artifacts, or its metrics when in_metrics).

    promise(ctx), where given, is its value before the stage has run (a path the network and toolkit
    fix), with a part only the run decides marked pending (PENDING_EPOCH). What the stage records
    when it runs replaces it. Without a promise the value is pending until the stage has run."""

    stage: str
    name: str
    promise: Callable[["Context"], Any] | None = field(default=None, compare=False, repr=False)
    in_metrics: bool = field(default=False, compare=False)

    @property
    def pending(self) -> str:
        return f"<{self.stage}.{self.name}>"

    def __str__(self) -> str:
        return f"{self.stage}.{self.name}"


class UndeclaredRead(RuntimeError):
    """A stage read an artifact it does not declare in Stage.reads (a bug in the stage)."""


@dataclass(frozen=True)
class Context:
    """Everything a stage may look at while planning. Built fresh before each stage."""

    config: Config
    toolkit: Toolkit
    network: Network
    workspace: Workspace
    key: str | None
    artifacts: Mapping[str, Mapping[str, Any]]  # stage -> artifacts recorded by its last successful run
    metrics: Mapping[str, Mapping[str, Any]]
    statuses: Mapping[str, str] = field(default_factory=dict)  # stage -> status of its last attempt
    resume: bool = False  # --resume: unfinished training continues from its newest complete checkpoint
    resume_epoch: int | None = None  # --resume-epoch N: continue from epoch N exactly
    extend: bool = False  # a finished training run whose epoch count was raised continues from its last epoch
    readable: frozenset[Artifact] | None = None  # what the stage being planned declares it reads (None: anything)

    @property
    def image(self) -> str:
        if self.config.runner.image:
            return self.config.runner.image
        return self.toolkit.detectnet_image if self.network.own_image else self.toolkit.image

    @property
    def deploy_image(self) -> str | None:
        return self.config.runner.deploy_image or self.toolkit.deploy_image

    def read(self, handle: Artifact) -> Any:
        """An artifact of an earlier stage: as it recorded it, else as promised (a real path, pending parts
        marked), else pending (`<stage.name>`)."""
        if self.readable is not None and handle not in self.readable:
            raise UndeclaredRead(f"{handle} is read by a stage that does not declare it in Stage.reads")
        source = self.metrics if handle.in_metrics else self.artifacts
        value = source.get(handle.stage, {}).get(handle.name)
        return handle.pending if value is None else value

    def command(self, subcommand: str) -> list[str]:
        return task_command(self.toolkit, self.network.task_name(self.toolkit.legacy_commands), subcommand)

    def key_args(self) -> list[str]:
        """-k KEY when a key is set (the runner redacts it; the manifest records it as ***)."""
        return ["-k", self.key] if self.key else []

    def container(self, relative: str) -> str:
        return self.workspace.container(relative)


@dataclass(frozen=True)
class StagePlan:
    """What running a stage means, fully resolved. Equal plans mean equal work."""

    image: str | None = None  # None: runs on the host (prepare)
    argv: tuple[str, ...] = ()
    specs: Mapping[str, str] = field(default_factory=dict)  # run-relative path -> text
    inputs: tuple[Path, ...] = ()  # host paths outside the run directory whose content matters
    run_inputs: tuple[str, ...] = ()  # run-relative paths (upstream outputs) whose content matters
    outputs: tuple[str, ...] = ()  # run-relative paths the stage promises
    clean: tuple[str, ...] = ()  # run-relative paths removed before it runs
    params: Mapping[str, Any] = field(default_factory=dict)  # anything else that changes the result
    env: tuple[tuple[str, str], ...] = ()
    # A resumed run: argv as a fresh run would have it (what the fingerprint compares), and where
    # it continues from.
    fresh_argv: tuple[str, ...] | None = None
    resumed_from: Mapping[str, Any] | None = None
    # Training: the epoch count is fingerprinted on its own (raising it extends a finished run instead of
    # starting over), so the specs are fingerprinted as rendered with a neutral epoch count.
    epochs: int | None = None
    fingerprint_specs: Mapping[str, str] | None = None
    # Builds or runs a TensorRT engine: the command is started so that it first prints the GPU and
    # TensorRT version it sees (provenance.probed); argv stays the TAO command.
    probe: bool = False


@dataclass(frozen=True)
class Outcome:
    metrics: Mapping[str, Any]
    artifacts: Mapping[str, Any]
    warnings: tuple[str, ...] = ()  # shown when the stage ends and kept in its manifest record


@dataclass(frozen=True)
class Stage:
    name: str
    plan: Callable[[Context], StagePlan]
    # Reads what the stage wrote (files in the run directory, its log text) and says what it produced.
    collect: Callable[[Context, StagePlan, str], Outcome]
    # Host stages do their work here instead of in a container.
    run_on_host: Callable[[Context, StagePlan, Callable[[str], None]], None] | None = None
    # Called just before the stage runs (after cleaning), e.g. to keep history TAO will overwrite.
    before_run: Callable[[Context, StagePlan], None] | None = None
    description: str = ""
    # The artifacts of other stages it may read (a superset: some are read only in some configurations),
    # and the artifacts it produces (those with a promise are known before it runs).
    reads: tuple[Artifact, ...] = ()
    produces: tuple[Artifact, ...] = ()
    # The stages it needs: derived by the planner from `reads` (planner.stages_for), never declared.
    needs: tuple[str, ...] = ()


PENDING_EPOCH = "<best>"  # the checkpoint epoch a training run selects when it ends


def checkpoint_of_epoch(found: list[Mapping[str, Any]], epoch: int) -> Mapping[str, Any]:
    """The checkpoint ({epoch, ...}) of the epoch evaluate.epoch names; ValueError listing those there are."""
    for checkpoint in found:
        if checkpoint["epoch"] == epoch:
            return checkpoint
    raise ValueError(f"evaluate.epoch {epoch}: no checkpoint of that epoch; epochs with one: "
                     f"{', '.join(str(c['epoch']) for c in found)}")


def is_pending(value: Any) -> bool:
    """Whether an artifact value is not decided yet (a <...> part in it)."""
    return isinstance(value, str) and "<" in value
