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


def _not_found(cmd: str) -> None:
    sys.stderr.write(f"bash: {cmd}: command not found\n")
    sys.exit(127)


def _pick(prog: str, choices, argv: list[str], what: str) -> tuple[str, list[str]]:
    """First positional (a network or a subtask) with argparse's error for a bad choice."""
    parser = argparse.ArgumentParser(prog=prog, add_help=True)
    parser.add_argument(what, choices=list(choices))
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    if not argv or argv[0] in ("-h", "--help"):
        parsed = parser.parse_args(argv)  # prints usage / help and exits
    parsed = parser.parse_args(argv[:1])
    return getattr(parsed, what), argv[1:]


def resolve(cmd: str, argv: list[str], version: str, role: str) -> tuple[str | None, str, list[str], str]:
    """-> (network, subcommand, remaining argv, prog)."""
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
    net = cmd
    sub, rest = _pick(cmd, catalog.subcommands(net, version, role), argv, "subtask")
    return net, sub, rest, f"{cmd} {sub}"


def entry(cmd: str, argv: list[str]) -> None:
    from . import parsers, tasks  # noqa: PLC0415 - keep `command not found` cheap

    version, role = runtime.version(), runtime.role()
    net, sub, rest, prog = resolve(cmd, argv, version, role)
    parser = parsers.build(prog, net, sub, version, role)
    args = parser.parse_args(rest)  # unknown flag -> usage error, exit 2
    ctx = Ctx(version, role, net, sub, args, prog)
    func = tasks.lookup(ctx)
    interrupted = "Training was interrupted" if sub == "train" else f"{sub} was interrupted"

    def body():
        gpus = getattr(args, "gpus", 1)
        if gpus is not None and gpus > 1 and sub != "train":
            raise runtime.TaskFailed(f"ValueError: {prog} does not support multi-GPU, "
                                     f"got --gpus {gpus}")
        runtime.print_key(ctx.key)
        fail_sub = runtime.os.environ.get("TAO_EMU_FAIL_SUBCOMMAND", "").strip()
        if fail_sub and fail_sub == sub:
            raise runtime.TaskFailed(f"RuntimeError: injected failure in {sub} "
                                     "(TAO_EMU_FAIL_SUBCOMMAND)")
        func(ctx)

    code = runtime.run_task(body, log_file=getattr(args, "log_file", None),
                            status=ctx.status, interrupted_message=interrupted)
    sys.exit(code)
