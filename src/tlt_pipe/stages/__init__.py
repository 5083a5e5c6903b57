"""Stages are declarative: a name, the stages they need, a pure function that plans the work
(argv, specs, inputs, outputs) from the run context, and a function that turns results into
metrics and named artifacts for the stages after it. No stage imports docker.
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

    @property
    def image(self) -> str:
        if self.config.runner.image:
            return self.config.runner.image
        return self.toolkit.detectnet_image if self.network.own_image else self.toolkit.image

    @property
    def deploy_image(self) -> str | None:
        return self.config.runner.deploy_image or self.toolkit.deploy_image

    def artifact(self, stage: str, name: str, default: Any = None) -> Any:
        """A named artifact of an earlier stage: as it recorded it, else as promised when planning (a real
        path, pending parts marked), else a <stage.name> placeholder."""
        value = self.artifacts.get(stage, {}).get(name)
        if value is None:
            return default if default is not None else f"<{stage}.{name}>"
        return value

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


@dataclass(frozen=True)
class Outcome:
    metrics: Mapping[str, Any]
    artifacts: Mapping[str, Any]


@dataclass(frozen=True)
class Stage:
    name: str
    needs: tuple[str, ...]
    plan: Callable[[Context], StagePlan]
    # Reads what the stage wrote (files in the run directory, its log text) and says what it produced.
    collect: Callable[[Context, StagePlan, str], Outcome]
    # Host stages do their work here instead of in a container.
    run_on_host: Callable[[Context, StagePlan, Callable[[str], None]], None] | None = None
    # Called just before the stage runs (after cleaning), e.g. to keep history TAO will overwrite.
    before_run: Callable[[Context, StagePlan], None] | None = None
    description: str = ""
    # The artifacts whose paths are known before the stage runs (name -> run-relative path), so the
    # stages after it plan with real paths. A part only the run decides is marked <like this>
    # (PENDING_EPOCH); what the stage records when it ran replaces these.
    promises: Callable[[Context], Mapping[str, str]] | None = None


PENDING_EPOCH = "<best>"  # the checkpoint epoch a training run selects when it ends


def is_pending(value: Any) -> bool:
    """Whether an artifact value is not decided yet (a <...> part in it)."""
    return isinstance(value, str) and "<" in value
