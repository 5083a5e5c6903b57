"""What a person at a terminal (or a CI log) sees of a run: the plan, skips with reasons, container
output, and one line per finished stage. Plain lines when stdout is not a terminal or NO_COLOR is set."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from tlt_pipe.manifest import StageRecord


def make_console(*, plain: bool = False, stderr: bool = False) -> Console:
    plain = plain or bool(os.environ.get("NO_COLOR"))
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, no_color=plain, highlight=False, soft_wrap=True,
                   force_terminal=False if plain else None, emoji=False)


class ConsoleEvents:
    """Prints a run's events. `quiet_output` hides container lines (they are always in logs/<stage>.log)."""

    def __init__(self, console: Console, *, quiet_output: bool = False):
        self.console = console
        self.quiet_output = quiet_output

    def plan(self, run_dir: Path, steps) -> None:
        self.console.print(f"[bold]tltpipe[/] run directory: {escape(str(run_dir))}")
        for step in steps:
            mark = "run " if step.action == "run" else "skip"
            self.console.print(f"  {mark} {step.name:<17} {escape(step.reason)}")

    def stage_skipped(self, step) -> None:
        self.console.print(f"[dim]- {step.name}: skipped, {escape(step.reason)}[/]")

    def stage_started(self, step, log_path: Path) -> None:
        where = step.plan.image or "host"
        self.console.print(f"[bold cyan]> {step.name}[/] ({escape(where)}) log: {escape(str(log_path))}")
        if step.argv:
            self.console.print(f"  [dim]$ {escape(' '.join(step.argv))}[/]")

    def line(self, stage: str, text: str) -> None:
        if not self.quiet_output:
            self.console.print(f"  [dim]{stage}|[/] {escape(text)}")

    def progress(self, stage: str, text: str) -> None:
        """Redraws are for live displays; a line-by-line console waits for the completed line."""

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        took = f"{record.duration_s:.1f}s" if record.duration_s is not None else "?"
        if record.status == "succeeded":
            self.console.print(f"[green]ok[/] {stage} in {took}{_headline(record.metrics)}")
            for warning in record.warnings:
                self.console.print(f"[yellow]warning[/] {stage}: {escape(warning)}")
        else:
            detail = f": {record.error}" if record.error else ""
            self.console.print(f"[red]{record.status}[/] {stage} after {took}{escape(detail)}")


def _headline(metrics: dict) -> str:
    """The one number worth showing for a stage."""
    for key, label in (("mAP", "mAP"), ("pruning_ratio", "pruning ratio"), ("images", "images"),
                       ("shards", "shards"), ("engine", "engine")):
        value = metrics.get(key)
        if value is not None:
            return f" ({label} {value:.4f})" if isinstance(value, float) else f" ({label} {value})"
    return ""
