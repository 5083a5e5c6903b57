"""The command line: parse, call the core, render the result. Nothing else lives here.

Only click and the registries load at start; each command imports the core it needs, so `--help`
and shell completion stay fast."""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click

from tlt_pipe import __version__
from tlt_pipe.errors import ConfigError, DockerUnavailable, TltPipeError
from tlt_pipe.registry import DATASET_FORMATS, DEFAULT_RUNS, DEFAULT_TOOLKIT, NETWORKS, RUNNERS, STAGE_NAMES


class _Group(click.Group):
    """Turns domain errors into one line on stderr and their exit code; never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TltPipeError as exc:
            tail = getattr(exc, "log_tail", None)
            if tail:
                click.echo(f"--- last {len(tail)} lines of the log ---", err=True)
                click.echo("\n".join(tail), err=True)
                click.echo("---", err=True)
            click.echo(f"tltpipe: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:  # before a stage started or after the last ended (a stage reports its own)
            click.echo("tltpipe: interrupted", err=True)
            sys.exit(130)
        except OSError as exc:
            # A file system obstacle no check foresaw (a folder where a file goes, a file where a folder
            # goes, no permission, a full disk): one line naming the path. What was recorded so far stays.
            where = exc.filename2 if exc.filename2 is not None else exc.filename
            if where is None or os.environ.get("TLTPIPE_DEBUG"):
                raise
            click.echo(f"tltpipe: error: {where}: {exc.strerror or exc}", err=True)
            sys.exit(2 if isinstance(exc, _OBSTACLES) else 1)


# The user's own files in the way: bad input (exit 2). Any other OSError (a full disk, an I/O error) is 1.
_OBSTACLES = (IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError, FileNotFoundError)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "TLTPIPE"})
@click.version_option(__version__, prog_name="tltpipe")
def main() -> None:
    """tltpipe: NVIDIA TAO Toolkit detection pipelines from one YAML file."""
    # The command line uses no pydantic plugins (observability hooks for services); looking for them scans
    # every installed package's entry points, about a fifth of a dry run's start. A user's own setting wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


@main.command()
@click.argument("network", type=click.Choice(NETWORKS))
@click.option("--toolkit", default=None, help=f"TAO Toolkit version [default: {DEFAULT_TOOLKIT}; the network's when "
                                               "that one does not ship it].")
@click.option("--dataset", "dataset_format", default="kitti", show_default=True, type=click.Choice(DATASET_FORMATS))
@click.option("--name", default=None, help="Run name (default: <network>-run).")
def init(network: str, toolkit: str | None, dataset_format: str, name: str | None) -> None:
    """Print a commented starter config: tltpipe init ssd > lpd.yaml"""
    import re

    from tlt_pipe.registry import NAME_PATTERN
    from tlt_pipe.starter import starter_config

    if name is not None and not re.match(NAME_PATTERN, name):
        raise ConfigError(f"--name {name!r}: letters, digits, '_', '.' and '-' only, starting with a letter or digit "
                          "(it names the run directory)")
    if toolkit is not None and not toolkit.strip():
        raise ConfigError(f"--toolkit '': give a TAO version, e.g. {DEFAULT_TOOLKIT}")

    click.echo(starter_config(network, toolkit=toolkit, dataset_format=dataset_format, name=name), nl=False)


def _run_options(func):
    options = [
        click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
                     envvar="TLTPIPE_CONFIG", help="The run's YAML config (env TLTPIPE_CONFIG)."),
        click.option("--run-dir", type=click.Path(path_type=Path), default=None, envvar="TLTPIPE_RUN_DIR",
                     help="Run directory (default: run_dir from the config, else runs/<name>; env TLTPIPE_RUN_DIR)."),
        click.option("--force", is_flag=True, help="Run the selected stages even if they are up to date."),
        click.option("--dry-run", is_flag=True, help="Print the plan; start no container."),
        click.option("--json", "as_json", is_flag=True,
                     help="JSON-lines events on stdout, human output on stderr (with --dry-run: the plan)."),
        click.option("--plain", is_flag=True, envvar="TLTPIPE_PLAIN", help="No colours or terminal control codes."),
        click.option("--quiet", is_flag=True, envvar="TLTPIPE_QUIET",
                     help="Hide container output (it is always in logs/<stage>.log)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a config key, e.g. --set runner.gpus=0 (repeatable)."),
        click.option("--mounts", "mounts_file", type=click.Path(path_type=Path), default=None,
                     help="Honour the Envs and DockerOptions of a tao launcher file (~/.tao_mounts.json)."),
        click.option("--resume", is_flag=True, help="Continue unfinished training from its newest complete checkpoint."),
        click.option("--resume-epoch", type=click.IntRange(min=1), default=None,
                     help="Continue training from this checkpoint epoch exactly."),
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                     help="Most stages running at the same time where the graph allows (runner.jobs; default: "
                          "one per GPU of a runner.gpus list, else 1; on Slurm, every ready stage)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@click.argument("network", type=click.Choice(NETWORKS))
@_run_options
@click.option("--from", "from_stage", type=click.Choice(STAGE_NAMES), default=None, help="First stage to run.")
@click.option("--to", "to_stage", type=click.Choice(STAGE_NAMES), default=None, help="Last stage to run.")
def run(network: str, from_stage: str | None, to_stage: str | None, force: bool, resume: bool,
        resume_epoch: int | None, **options) -> None:
    """Run the whole pipeline (or --from/--to a part of it); up-to-date stages are skipped."""
    from tlt_pipe.planner import Selection

    _execute(network, Selection(from_stage, to_stage, force, resume, resume_epoch), **options)


@main.command()
@click.argument("stage_name", metavar="STAGE", type=click.Choice(STAGE_NAMES))
@_run_options
def stage(stage_name: str, force: bool, resume: bool, resume_epoch: int | None, **options) -> None:
    """Run one stage; its inputs come from the run directory's manifest (for CI jobs)."""
    from tlt_pipe.planner import Selection

    _execute(None, Selection(stage_name, stage_name, force, resume, resume_epoch), **options)


def _execute(network: str | None, selection, *, config_path: Path, run_dir: Path | None,
             dry_run: bool, as_json: bool, plain: bool, quiet: bool, sets: tuple[str, ...],
             mounts_file: Path | None, jobs: int | None) -> None:
    from tlt_pipe.config import load_config
    from tlt_pipe.console import make_console
    from tlt_pipe.pipeline import Pipeline
    from tlt_pipe.secrets import read_key
    from tlt_pipe.tracking import open_tracking

    config = load_config(config_path, network=network, sets=sets + ((f"runner.jobs={jobs}",) if jobs else ()))
    for note in config.notes:
        click.echo(f"tltpipe: note: {config_path}: {note}", err=True)
    if mounts_file is not None:
        from tlt_pipe.launcher_mounts import apply_launcher_mounts

        config, notes = apply_launcher_mounts(config, mounts_file)
        for note in notes:
            click.echo(f"tltpipe: note: {note}", err=True)
    run_dir = run_dir or config.default_run_dir()
    console = make_console(plain=plain or as_json, stderr=as_json and not dry_run)
    events = _events(console, as_json=as_json and not dry_run, quiet=quiet)
    tracking = None if dry_run else open_tracking(config, events, run_dir, [read_key() or ""])
    pipeline = Pipeline(config, run_dir, key=read_key(), events=tracking or events,
                        runner_factory=lambda: _runner(config), config_source=str(config_path))
    if dry_run:
        steps = pipeline.dry_run(selection)
        if as_json:
            for step in steps:
                click.echo(json.dumps(step.as_json()))
        else:
            pipeline.events.plan(pipeline.run_dir, steps)
            for step in steps:
                if step.action == "run":
                    console.print(f"[bold]{step.name}[/] [dim]{step.plan.image or 'host'}[/]\n  $ {' '.join(step.argv)}"
                                  if step.argv else f"[bold]{step.name}[/] [dim]host[/]", markup=True)
        return
    with _sigterm_raises(), tracking or nullcontext():  # the tracked run ends FINISHED, FAILED or KILLED
        manifest = pipeline.run(selection)
    ran = [n for n, r in manifest.stages.items() if r.status == "succeeded"]
    console.print(f"[bold green]done[/]: {pipeline.run_dir} ({len(ran)} stages succeeded; manifest.json)")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def show(run_dir: Path, as_json: bool) -> None:
    """What a run produced: a stage table, then AP per class, and the engine's mAP against the model's."""
    from rich.markup import escape
    from rich.table import Table

    from tlt_pipe.console import make_console
    from tlt_pipe.manifest import load_manifest
    from tlt_pipe.summary import ap_table, engine_accuracy, stage_rows, summary_json

    manifest = load_manifest(run_dir)
    if manifest is None:
        raise ConfigError(f"{run_dir}: no manifest.json here; is it a tltpipe run directory?")
    if as_json:
        click.echo(json.dumps(summary_json(manifest), indent=2))
        return
    console = make_console()
    table = Table(title=f"{manifest.name}: {manifest.network} on TAO {manifest.toolkit}", title_justify="left")
    for column in ("stage", "status", "time", "result", "output"):
        table.add_column(column)
    for row in stage_rows(manifest):
        took = f"{row.duration_s:.1f}s" if row.duration_s is not None else ""
        table.add_row(row.stage, row.status, took, row.key_metric, row.output)
    console.print(table)
    stages, rows = ap_table(manifest)
    if stages:
        ap = Table(title="average precision", title_justify="left")
        ap.add_column("class")
        for stage_name in stages:
            ap.add_column(stage_name, justify="right")
        for cls, values in rows:
            ap.add_row(cls, *("" if v is None else f"{v:.4f}" for v in values))
        console.print(ap)
    engine = engine_accuracy(manifest)
    if engine:
        colour = "red" if engine.drop > 0.01 else "yellow" if engine.drop > 0 else "green"
        console.print(f"[{colour}]{escape(engine.line)}[/]")
        for warning in engine.warnings:
            console.print(f"[yellow]warning[/] {escape(warning)}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
def report(run_dir: Path) -> None:
    """Charts (loss, lr, mAP per epoch; AP per class; pruning vs mAP), metrics.json and a
    self-contained report.html in RUN_DIR/report/."""
    from tlt_pipe.report import write_report

    written = write_report(run_dir)
    click.echo(f"report: {written.html} ({len(written.charts)} charts, {written.metrics.name})")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def compare(runs: tuple[Path, ...], as_json: bool) -> None:
    """Config differences and metrics of two or more runs side by side (the change against the first):
    tltpipe compare runs/a runs/b, or every point of a sweep: tltpipe compare runs/x-sweep/points/*"""
    from rich.table import Table

    from tlt_pipe.compare import compare_runs, load_run
    from tlt_pipe.console import make_console

    if len(runs) < 2:
        raise click.UsageError("give two or more run directories")
    result = compare_runs([(str(r), *load_run(r)) for r in runs])
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, default=str))
        return
    console = make_console()
    names = [str(r) for r in runs]
    config = Table(title="config differences", title_justify="left")
    for column in ("key", *names):
        config.add_column(column)
    for diff in result.config:
        config.add_row(diff.key, *[str(v) for v in diff.values])
    console.print(config if result.config else "config: no differences")
    metrics = Table(title="metrics (change against the first run)", title_justify="left")
    for column, justify in (("stage", "left"), ("metric", "left"), *[(n, "right") for n in names]):
        metrics.add_column(column, justify=justify)
    for row in result.metrics:
        cells = [_cell(value, delta) if i else _cell(value, None) for i, (value, delta)
                 in enumerate(zip(row.values, row.deltas))]
        metrics.add_row(row.stage, row.metric, *cells)
    console.print(metrics)


def _cell(value, delta) -> str:
    text = "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
    if delta is not None and value is not None:
        text += f" ({delta:+.4f})" if isinstance(delta, float) else f" ({delta:+d})"
    return text


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Check for this config: its images, GPUs, shm size and run directory.")
@click.option("--toolkit", default=None, help=f"Without --config: the TAO version to check [default: {DEFAULT_TOOLKIT}].")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Where runs will be written.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
def doctor(config_path: Path | None, toolkit: str | None, run_dir: Path | None, as_json: bool) -> None:
    """Check this machine: Docker, NVIDIA runtime and GPUs, shm, disk, images, TLTPIPE_KEY, write access.
    Exits 1 when a check fails."""
    from rich.markup import escape

    from tlt_pipe.config import load_config
    from tlt_pipe.console import make_console
    from tlt_pipe.doctor import gather, judge
    from tlt_pipe.pipeline import usable_run_dir
    from tlt_pipe.planner import Planner, Selection
    from tlt_pipe.toolkits import get_toolkit, normalize_version

    kind, commands = "docker", []
    if config_path is not None and toolkit is not None:
        raise ConfigError("--toolkit and --config: the config names its toolkit; give one or the other")
    if config_path is not None:
        config = load_config(config_path)
        run_dir = run_dir or config.default_run_dir()
        planned = [s.plan for s in Planner(config, run_dir, None).plan(Selection(), None)]
        images = list(dict.fromkeys(p.image for p in planned if p.image))  # what the run would use
        commands = [p.argv[0] for p in planned if p.image and p.argv]
        requested, shm, kit, kind = (not config.runner.no_gpus, config.docker.shm_size, get_toolkit(config.toolkit),
                                     config.runner.kind)
    else:
        try:
            kit = get_toolkit(normalize_version(toolkit or DEFAULT_TOOLKIT))
        except ValueError as exc:
            raise ConfigError(f"--toolkit {toolkit}: {exc}") from None
        images = [i for i in (kit.image, kit.deploy_image) if i]
        requested, shm, run_dir = True, "16G", run_dir or Path(DEFAULT_RUNS)
    usable_run_dir(run_dir)  # a file, a loop or a name too long is refused as a run would refuse it
    runner = _runner(config) if config_path is not None else _docker_runner_default()
    facts = gather(runner, kind=kind, images=images, commands=commands, gpus_requested=requested, shm_size=shm,
                   run_dir=run_dir, key_required=kit.key_required, toolkit=kit.version)
    checks = judge(facts)
    console = make_console()
    for check in checks:
        if as_json:
            click.echo(json.dumps(check.as_json()))
            continue
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}[check.level]
        fix = f"\n       [dim]fix: {escape(check.fix)}[/]" if check.fix and check.level != "ok" else ""
        console.print(f"[{colour}]{check.level:<4}[/] {check.name:<15} {escape(check.detail)}{fix}")
    if any(c.level == "fail" for c in checks):
        sys.exit(1)


def _docker_runner_default():
    from tlt_pipe.runners.docker import DockerRunner

    return DockerRunner(gpus="none")


def _events(console, *, as_json: bool, quiet: bool):
    """What the run reports to: JSON lines on stdout, else the console (plain lines or a live display)."""
    from tlt_pipe.console import ConsoleEvents

    human = ConsoleEvents(console, quiet_output=quiet)
    if as_json:
        from tlt_pipe.events_json import JsonEvents

        return JsonEvents(sys.stdout, human)
    if console.is_terminal:
        from tlt_pipe.live import LiveEvents

        return LiveEvents(console, quiet_output=quiet)
    return human


@main.command()
@click.option("--dry-run", is_flag=True, help="List the orphaned jobs; remove nothing.")
@click.option("--runner", "kinds", type=click.Choice(("all", *RUNNERS)), default="all", show_default=True,
              help="Which runner's jobs to look after.")
@click.option("--runs", "search", type=click.Path(path_type=Path, exists=True, file_okay=False), multiple=True,
              help=f"Where the local runner's run directories are (repeatable; default: {DEFAULT_RUNS}/).")
def gc(dry_run: bool, kinds: str, search: tuple[Path, ...]) -> None:
    """Remove jobs tltpipe started (containers, host processes) whose run no live tltpipe process owns."""
    from tlt_pipe.runlock import is_held
    from tlt_pipe.runners import runner_of_kind

    orphans, unreachable = 0, []
    for kind in RUNNERS if kinds == "all" else (kinds,):
        runner = runner_of_kind(kind, search=search or (Path(DEFAULT_RUNS),))
        try:
            jobs = runner.find_jobs()
        except TltPipeError as exc:
            unreachable.append(f"{kind}: {exc}")
            continue
        for info in jobs:
            if is_held(Path(info.labels.get("tltpipe.run", "/nonexistent"))):
                continue
            orphans += 1
            where = f"{info.labels.get('tltpipe.run', '?')} stage {info.labels.get('tltpipe.stage', '?')}"
            if not dry_run:
                runner.remove_job(info.id)
            click.echo(f"{'would remove' if dry_run else 'removed'} {kind} job {info.name} ({info.status}; {where})")
    if not orphans:
        click.echo("no orphaned tltpipe jobs")
    for problem in unreachable:  # all runners: one without its engine is reported, not fatal
        click.echo(f"tltpipe gc: not checked: {problem}", err=True)
    if unreachable and kinds != "all":
        sys.exit(DockerUnavailable.exit_code)


@contextmanager
def _sigterm_raises():
    """While a run goes on, SIGTERM stops it as Ctrl-C does (exit 143)."""
    def terminated(signum, frame) -> None:
        from tlt_pipe.pipeline import Terminated

        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.argument("axes", nargs=-1, metavar="[KEY=V1,V2,...]...")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), envvar="TLTPIPE_CONFIG",
              help="The YAML config every point starts from (its sweep: block adds keys to sweep).")
@click.option("--sweep-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the base run, the points and the table go (default: <run directory>-sweep).")
@click.option("--retrain/--no-retrain", default=None,
              help="A prune sweep retrains and evaluates each pruned model (default), or stops after prune.")
@click.option("--to", "to_stage", type=click.Choice(STAGE_NAMES), default=None,
              help="The last stage of each point (default: evaluate_retrain for prune keys, else evaluate).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Points at the same time (default: one per GPU of a runner.gpus list, else 1).")
@click.option("--max-drop", type=click.FloatRange(0, 1), default=None,
              help="mAP the recommended model may lose against the trained, unpruned one (default 0.02).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config key for every point.")
@click.option("--json", "as_json", is_flag=True, help="The table as JSON on stdout, progress on stderr.")
@click.option("--plain", is_flag=True, envvar="TLTPIPE_PLAIN", help="No colours or terminal control codes.")
@click.option("--quiet", is_flag=True, envvar="TLTPIPE_QUIET", help="Hide container output.")
def sweep(axes: tuple[str, ...], config_path: Path, sweep_dir: Path | None, retrain: bool | None,
          to_stage: str | None, jobs: int | None, max_drop: float | None, sets: tuple[str, ...], as_json: bool,
          plain: bool, quiet: bool) -> None:
    """Run one config at several values of some keys and tabulate them: the prune-threshold table in one
    command. `tltpipe sweep --config lpd.yaml prune.threshold=0.1,0.3,0.5,0.7`. Several keys: every
    combination. The stages every point shares (prepare ... train, evaluate) run once."""
    from rich.table import Table

    from tlt_pipe.config import load_config
    from tlt_pipe.console import make_console
    from tlt_pipe.secrets import read_key
    from tlt_pipe.sweeps import parse_axes, recommendation, run_sweep

    config = load_config(config_path, sets=sets)
    plan = config.sweep
    merged = {**plan.params, **parse_axes(axes)}
    console = make_console(plain=plain or as_json, stderr=as_json)
    with _sigterm_raises():
        result = run_sweep(config, merged, sweep_dir=sweep_dir or config.default_sweep_dir(),
                           key=read_key(), events=_events(console, as_json=False, quiet=quiet),
                           runner_factory=_runner, retrain=plan.retrain if retrain is None else retrain,
                           to_stage=to_stage or plan.to, jobs=jobs or plan.jobs,
                           max_drop=plan.max_drop if max_drop is None else max_drop)
    if as_json:
        click.echo(result.files["json"].read_text(encoding="utf-8"), nl=False)
    else:
        table = Table(title=f"sweep: {result.sweep_dir}", title_justify="left")
        keys = list(merged)
        classes = sorted({c for r in result.rows for c in r.ap})
        for column in ["point", *keys, "mAP", "Δ mAP", "ratio", "params", "size", *[f"AP {c}" for c in classes]]:
            table.add_column(column, justify="left" if column in ("point", *keys) else "right")
        for r in result.rows:
            table.add_row(r.point.split("-", 1)[0], *[str(r.values.get(k)) for k in keys], _num(r.mAP) if r.status == "succeeded"
                          else r.status, _num(r.delta, "+.4f"), _num(r.pruning_ratio, ".3f"),
                          "" if r.params is None else f"{r.params / 1e6:.2f}M",
                          "" if r.size_bytes is None else f"{r.size_bytes / 1e6:.2f} MB",
                          *[_num(r.ap.get(c)) for c in classes])
        console.print(table)
        if result.baseline is not None:
            console.print(f"trained model (base/, evaluate): mAP {result.baseline:.4f}")
        console.print(recommendation(result.recommended, result.baseline, result.max_drop))
        console.print(f"table: {result.files['csv']}, {result.files['json']}; plot: {result.files['plot']}")
    failed = [r for r in result.rows if r.status != "succeeded"]
    for r in failed:
        if r.error:
            click.echo(f"{r.point}: {r.error}", err=True)
    if failed:
        click.echo(f"tltpipe: error: {len(failed)} of {len(result.rows)} points did not finish: "
                   f"{', '.join(r.point for r in failed)} (their logs are under points/<point>/logs/)", err=True)
        sys.exit(1)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), envvar="TLTPIPE_CONFIG",
              help="The YAML config every trial starts from; its tune: block holds the search space.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Trials in the study, all told (tune.trials; a resumed study counts its earlier ones).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Trials at the same time (default: one per GPU of a runner.gpus list, else 1).")
@click.option("--tune-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the study, the trials and best.yaml go (default: <run directory>-tune).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config key for every trial.")
@click.option("--json", "as_json", is_flag=True, help="The trials and the best as JSON on stdout, progress on stderr.")
@click.option("--plain", is_flag=True, envvar="TLTPIPE_PLAIN", help="No colours or terminal control codes.")
@click.option("--quiet", is_flag=True, envvar="TLTPIPE_QUIET", help="Hide container output.")
def tune(config_path: Path, trials: int | None, jobs: int | None, tune_dir: Path | None, sets: tuple[str, ...],
         as_json: bool, plain: bool, quiet: bool) -> None:
    """Hyperparameter search with Optuna over the config's tune.space: each trial a run directory, a
    trial whose validation mAP lags stopped early, the best config written as best.yaml. Run the same
    command again to go on with the study (after a crash too)."""
    from rich.table import Table

    from tlt_pipe.config import load_config
    from tlt_pipe.console import make_console
    from tlt_pipe.secrets import read_key
    from tlt_pipe.tune import run_tune

    config = load_config(config_path, sets=sets)
    console = make_console(plain=plain or as_json, stderr=as_json)
    with _sigterm_raises():
        result = run_tune(config, tune_dir=tune_dir or config.default_sweep_dir("tune"), key=read_key(),
                          events=_events(console, as_json=False, quiet=quiet), runner_factory=_runner,
                          trials=trials, jobs=jobs, say=lambda text: console.print(f"tune: {text}", markup=False))
    if as_json:
        click.echo(json.dumps({"best": result.best, "trials": result.trials}, indent=2, default=str))
        return
    keys = list(config.tune.space)
    table = Table(title=f"tune: {result.tune_dir}", title_justify="left")
    for column in ("trial", "state", "mAP", *keys):
        table.add_column(column, justify="right" if column in ("trial", "mAP") else "left")
    for row in result.trials:
        state = row["state"] + (f" (epoch {row['pruned_at']})" if row.get("pruned_at") is not None else "")
        table.add_row(str(row["number"]), state, _num(row["value"]), *[_short(row["params"].get(k)) for k in keys])
    console.print(table)
    best = result.best
    console.print(f"[bold]best[/]: trial {best['number']}, mAP {best['value']:.4f} ({best['run_dir']}); "
                  f"config: {result.files['best']}" if best else "best: none (no trial finished)")
    console.print(f"trials: {result.files['csv']}; charts: {result.files['history']}, {result.files['importance']}")
    if best is None:
        sys.exit(1)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--source", default=None, help="A video file (file:///path or a path), http(s)://..., camera:N "
              "(/dev/videoN) or rtsp://HOST/... [default: the run's deepstream.source].")
@click.option("--sink", default=None, help="file:PATH (mp4), display, rtsp:PORT (an RTSP server) or fake (no output) "
              "[default: the run's deepstream.sink].")
@click.option("--tracker/--no-tracker", default=None, help="NvMultiObjectTracker (IOU) [default: the run's "
              "deepstream.tracker].")
@click.option("--with-key", is_flag=True,
              help="Write TLTPIPE_KEY into the config (an .etlt model needs it for DeepStream to build its own engine).")
@click.option("--parser-lib", default=None, help="The custom bounding-box parser library [default: the run's "
              "deepstream.parser_library].")
def deepstream(run_dir: Path, source: str | None, sink: str | None, tracker: bool | None, with_key: bool,
               parser_lib: str | None) -> None:
    """Write <run>/deepstream/: config_infer_primary.txt for gst-nvinfer, labels.txt and deepstream_app.txt,
    from the run's exported model and engine. Run it with: deepstream-app -c deepstream_app.txt"""
    from tlt_pipe import deepstream as ds
    from tlt_pipe.secrets import read_key

    manifest, config = ds.run_of(run_dir)
    settings = config.deepstream  # what the run was configured with, unless an option says else
    where = (_ds_option(ds.parse_source, source, "--source", settings.source, "deepstream.source"),
             _ds_option(ds.parse_sink, sink, "--sink", settings.sink, "deepstream.sink"))
    tracker = settings.tracker if tracker is None else tracker
    key = read_key() if with_key else None
    if with_key and not key:
        raise ConfigError("--with-key: TLTPIPE_KEY is not set")
    library = _ds_option(ds.parse_library, parser_lib, "--parser-lib", settings.parser_library,
                         "deepstream.parser_library")
    bundle = ds.bundle_of_run(run_dir, manifest, config, with_key=key, parser_library=library)
    out = run_dir / "deepstream"
    try:
        ds.write_bundle(out, bundle, *where, tracker=tracker)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{out}: is a file; the bundle is a folder there (move the file away)") from None
    except OSError as exc:
        raise ConfigError(f"{exc.filename2 or exc.filename or out}: cannot write the bundle: {exc.strerror or exc}") from None
    click.echo(f"deepstream: {out}/ ({ds.INFER_CONFIG}, {ds.LABELS}, {ds.APP_CONFIG}); "
               f"run: cd {out} && deepstream-app -c {ds.APP_CONFIG}")
    if bundle.etlt:
        click.echo("note: the model is an .etlt (TAO 3/4): DeepStream 6.x opens it; "
                   + ("the key is in the config (readable only by you)" if key else
                      "the config uses the engine tltpipe built, which needs no key but only runs on the same GPU "
                      "and TensorRT; --with-key lets DeepStream build its own"), err=True)


def _ds_option(parse, text: str | None, option: str, configured: str, key: str):
    """The option's value parsed, or the run's configured one when the option is not given; one line naming
    which when it is wrong."""
    try:
        return parse(configured if text is None else text)
    except ValueError as exc:
        raise ConfigError(f"{option if text is not None else key}: {exc}") from None


def _short(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _num(value, spec: str = ".4f") -> str:
    return "" if value is None else format(value, spec)


def _runner(config):
    from tlt_pipe.runners import runner_for

    return runner_for(config)


def _register_optional_commands() -> None:
    from tlt_pipe.datasets.command import convert

    main.add_command(convert)


_register_optional_commands()


_MAX_INPUT = 16384  # pixels: far above any detector's input side


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A range check lets NaN through (every comparison with it is false)."""
    if value != value:
        raise click.BadParameter(f"{value} is not a number of pixels", ctx, param)
    return value


@main.command("anchors")
@click.argument("labels", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("images", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-x", "width", type=click.IntRange(1, _MAX_INPUT), required=True, help="Network input width.")
@click.option("-y", "height", type=click.IntRange(1, _MAX_INPUT), required=True, help="Network input height.")
@click.option("-n", "count", type=click.IntRange(min=1), default=9, show_default=True, help="Number of anchors.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
              help="Seed of the k-medians start.")
@click.option("--min-x", type=click.FloatRange(0, _MAX_INPUT), default=0, callback=_finite,
              help="Ignore boxes narrower than this (input pixels).")
@click.option("--min-y", type=click.FloatRange(0, _MAX_INPUT), default=0, callback=_finite,
              help="Ignore boxes lower than this (input pixels).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: anchors and the spec's anchor shapes.")
def anchors_command(labels: Path, images: Path, width: int, height: int, count: int, seed: int, min_x: float,
                    min_y: float, as_json: bool) -> None:
    """YOLO anchors from KITTI LABELS and their IMAGES, as `yolo_v4 kmeans` computes them (but seeded)."""
    from tlt_pipe.anchors import anchor_groups, compute_anchors, format_anchor_shape

    found = compute_anchors(labels, images, width, height, n=count, seed=seed, min_x=min_x, min_y=min_y)
    groups = ("small", "mid", "big") if count % 3 == 0 else ("mid", "big") if count % 2 == 0 else ("all",)
    shapes = {f"{g}_anchor_shape": format_anchor_shape(a) for g, a in anchor_groups(found, groups).items()}
    if as_json:
        click.echo(json.dumps({"anchors": [list(a) for a in found], **shapes}))
        return
    click.echo("Please use following anchor sizes in YOLO config:")
    for w, h in found:
        click.echo(f"({w:.2f}, {h:.2f})")
    for name, shape in shapes.items():
        click.echo(f'{name}: "{shape}"')
