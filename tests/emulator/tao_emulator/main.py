"""Entry point: resolve the command for this image, parse its flags, run the task."""

from __future__ import annotations

import argparse
import sys

from . import catalog, runtime


class Ctx:
    """What a task needs to know about the invocation."""

    def __init__(self, version: str, role: str, net: str | None, sub: str, args, prog: str):
        self.version = version
        self.role = role
        self.net = net
        self.sub = sub
        self.args = args
        self.prog = prog
        self.major = catalog.major(version)
        self.trt_version = catalog.TRT_VERSIONS[(version, role)]
        self.status = runtime.StatusLog(None, False)

    @property
    def key(self) -> str | None:
        return getattr(self.args, "key", None)


class EntrypointCrash(Exception):
    """An exception the task entrypoint itself does not catch: a traceback and exit 1, before any
    task ran, so without an `Execution status` line."""


def _not_found(cmd: str) -> None:
    sys.stderr.write(f"bash: {cmd}: command not found\n")
    sys.exit(127)


def _pick(prog: str, choices, argv: list[str], what: str) -> tuple[str, list[str]]:
    """First positional (a TLT 2.0 network) with argparse's error for a bad choice."""
    parser = argparse.ArgumentParser(prog=prog, add_help=True)
    parser.add_argument(what, choices=list(choices))
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    if not argv or argv[0] in ("-h", "--help"):
        parser.parse_args(argv)  # prints usage / help and exits
    parsed = parser.parse_args(argv[:1])
    return getattr(parsed, what), argv[1:]


def _first_argument_is_not_a_task(cmd: str, argv: list[str], version: str, role: str) -> None:
    """TAO's task entrypoints (TF1 and Deploy) parse global flags, then the task and its flags, but
    take the task to run from the FIRST argument only: `ssd --gpus 1 train ...` parses and then dies."""
    from . import parsers  # noqa: PLC0415

    tasks = catalog.subcommands(cmd, version, role)
    top = parsers.add_options(argparse.ArgumentParser(prog=cmd, description="Transfer Learning Toolkit"),
                              parsers.global_options(role))
    subs = top.add_subparsers(title="tasks")
    for task in tasks:
        subs.add_parser(task, add_help=False,
                        parents=[parsers.build(f"{cmd} {task}", cmd, task, version, role)])
    args = top.parse_args(argv)  # a bad flag or task -> usage error, exit 2
    _entrypoint_checks(None, args, role)


def _entrypoint_checks(task: str | None, args, role: str) -> None:
    """What the entrypoints assert before they start the task."""
    if role == "deploy":
        if args.gpu_index < 0:
            raise EntrypointCrash("AssertionError: GPU id cannot be negative.")
    else:
        gpus = args.gpus
        if gpus <= 0:
            raise EntrypointCrash("AssertionError: At least 1 GPU required to run any task.")
        processes = args.num_processes if args.num_processes >= 0 else gpus
        if gpus > 1 and task != "train":
            raise EntrypointCrash(f"AssertionError: Please use only 1 GPU for the task {task}. Only "
                                  "the following tasks are supported to run with multiple GPUs, "
                                  "['train']")
        if processes > 1 and gpus <= 1:
            raise EntrypointCrash("AssertionError: Number of GPUs must be > 1 for data "
                                  "parallelized training(np > 1).")
        if args.use_amp and task != "train":
            raise EntrypointCrash("AssertionError: AMP is currently supported only for training.")
        ids = sorted(set(args.gpu_index if args.gpu_index is not None else range(gpus)))
        if min(ids) < 0:
            raise EntrypointCrash("AssertionError: GPU ids cannot be negative.")
        if len(ids) != gpus:
            raise EntrypointCrash(f"AssertionError: --gpus {gpus} needs as many GPU indices, "
                                  f"got --gpu_index {ids}")
    if task is None:  # the first argument was not the task
        raise EntrypointCrash("KeyError: None")


def resolve(cmd: str, argv: list[str], version: str, role: str) -> tuple[str | None, str, list[str], str]:
    """-> (network, subcommand, the task's own argv, prog)."""
    if cmd not in catalog.commands(version, role):
        _not_found(cmd)
    if version == "2.0":
        sub, takes_net = catalog.TLT2_COMMANDS[cmd]
        if not takes_net:
            return None, sub, argv, cmd
        nets = (catalog.TLT2_INT8_TENSORFILE_NETS if sub == "calibration_tensorfile"
                else catalog.TLT2_NETS)
        net, rest = _pick(cmd, nets, argv, "network")
        return catalog.NET_ALIASES.get(net, net), sub, rest, f"{cmd} {net}"
    if cmd == "converter":
        return None, "converter", argv, cmd
    if not argv or argv[0] not in catalog.subcommands(cmd, version, role):
        _first_argument_is_not_a_task(cmd, argv, version, role)
    return cmd, argv[0], argv[1:], f"{cmd} {argv[0]}"


def parse(cmd: str, argv: list[str], version: str, role: str):
    """-> (network, subcommand, parsed arguments, prog), after the entrypoint's own checks."""
    from . import parsers  # noqa: PLC0415

    net, sub, rest, prog = resolve(cmd, argv, version, role)
    args = parsers.build(prog, net, sub, version, role).parse_args(rest)  # bad flag -> exit 2
    if sub != "converter":
        _entrypoint_checks(sub, args, role)
    return net, sub, args, prog


def entry(cmd: str, argv: list[str]) -> None:
    from . import tasks  # noqa: PLC0415 - keep `command not found` cheap

    version, role = runtime.version(), runtime.role()
    if cmd in catalog.PYT_NETS and cmd in catalog.commands(version, role):
        from . import experiment  # noqa: PLC0415 - the Hydra-style networks

        experiment.entry(cmd, argv, version, role)
    try:
        net, sub, args, prog = parse(cmd, argv, version, role)
    except EntrypointCrash as exc:
        sys.stderr.write(f"Traceback (most recent call last):\n  File \"/usr/local/bin/{cmd}\"\n{exc}\n")
        sys.exit(1)
    ctx = Ctx(version, role, net, sub, args, prog)
    func = tasks.lookup(ctx)
    interrupted = "Training was interrupted" if sub == "train" else f"{sub} was interrupted"

    def body():
        runtime.print_key(ctx.key)
        fail_sub = runtime.os.environ.get("TAO_EMU_FAIL_SUBCOMMAND", "").strip()
        if fail_sub and fail_sub == sub:
            raise runtime.TaskFailed(f"RuntimeError: injected failure in {sub} "
                                     "(TAO_EMU_FAIL_SUBCOMMAND)")
        func(ctx)

    code = runtime.run_task(body, log_file=getattr(args, "log_file", None),
                            status=ctx.status, interrupted_message=interrupted,
                            fail_code=runtime.fail_code(role))
    sys.exit(code)
