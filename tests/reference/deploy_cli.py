"""TAO Deploy's task parsers (gen_trt_engine, evaluate, inference), rebuilt from the nvidia-tao-deploy wheel.

Each task script defines `build_command_line_parser(parser=None)`, which only calls argparse. That one
function is taken from the script's source with `ast` and run in a namespace holding argparse alone,
so the parser is TAO Deploy's own, option for option, without importing the package (which needs
TensorRT and CUDA).

The Deploy entrypoint (`ssd gen_trt_engine ...`) adds `--gpu_index` and `--log_file` before and after
the task name, takes the task from the first argument only, and hands every parsed value on by its
long name. `actions()` flattens a parser into plain data: what the emulator images build their
parsers from.
"""

from __future__ import annotations

import argparse
import ast
from functools import cache

from tests.reference import wheels

TASKS = ("gen_trt_engine", "evaluate", "inference")
# tltpipe's network -> the Deploy module that serves it (dssd shares ssd's, yolo_v4_tiny yolo_v4's).
MODULES = {"ssd": "ssd", "dssd": "ssd", "retinanet": "retinanet", "yolo_v3": "yolo_v3", "yolo_v4": "yolo_v4",
           "yolo_v4_tiny": "yolo_v4", "detectnet_v2": "detectnet_v2"}
# What the entrypoint adds to every task.
ENTRYPOINT = (
    {"option_strings": ["--gpu_index"], "dest": "gpu_index", "type": "int", "default": 0, "required": False,
     "nargs": None, "choices": None, "action": "store"},
    {"option_strings": ["--log_file"], "dest": "log_file", "type": "str", "default": None, "required": False,
     "nargs": None, "choices": None, "action": "store"},
)


def _function_source(source: str, name: str, path: str) -> str:
    """The function's source, after the module's literal constants it may read (DEFAULT_...)."""
    tree = ast.parse(source, filename=path)
    constants, function = [], None
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue
            constants.append(ast.get_source_segment(source, node))
        elif isinstance(node, ast.FunctionDef) and node.name == name:
            function = ast.get_source_segment(source, node)
    if function is None:
        raise LookupError(f"{path} defines no {name}()")
    return "\n".join([*constants, function])


def function(path: str, name: str, namespace: dict):
    """One plain-Python function of the Deploy wheel, run against the names in namespace alone."""
    source = wheels.members(wheels.DEPLOY)[path].decode("utf-8")
    scope = {**namespace, "__builtins__": __builtins__}
    exec(compile(_function_source(source, name, path), path, "exec"), scope)  # noqa: S102
    return scope[name]


@cache
def _builder(module: str, task: str):
    return function(f"nvidia_tao_deploy/cv/{module}/scripts/{task}.py", "build_command_line_parser",
                    {"argparse": argparse})


def spec_loader(network: str, message_classes: dict):
    """TAO Deploy's load_proto for a network (it merges the spec text into the real message), given the
    message classes it names (Experiment, and for DetectNet_v2 Inference)."""
    import os  # noqa: PLC0415
    from google.protobuf.text_format import Merge  # noqa: PLC0415

    return function(f"nvidia_tao_deploy/cv/{MODULES[network]}/proto/utils.py", "load_proto",
                    {"os": os, "merge_text_proto": Merge, **message_classes})


def parser(network: str, task: str) -> argparse.ArgumentParser:
    """The task's own parser plus the entrypoint's --gpu_index and --log_file; errors raise instead of exiting."""
    result = argparse.ArgumentParser(prog=f"{network} {task}", exit_on_error=False, add_help=False)
    for action in ENTRYPOINT:
        result.add_argument(*action["option_strings"], dest=action["dest"], type=int if action["type"] == "int"
                            else str, default=action["default"])
    return _builder(MODULES[network], task)(result)


_TYPES = {int: "int", float: "float", str: "str", None: None}


def actions(network: str, task: str) -> list[dict]:
    """The task's options as plain data (option strings, dest, type, default, required, nargs, choices, action)."""
    return flatten(parser(network, task))


def flatten(argument_parser: argparse.ArgumentParser) -> list[dict]:
    """Any parser's options in the shape of actions() (help left out), to compare parsers with."""
    table = []
    for action in argument_parser._actions:  # noqa: SLF001 - argparse keeps no public list
        if isinstance(action, argparse._HelpAction):  # noqa: SLF001
            continue
        kind = "store_true" if isinstance(action, argparse._StoreTrueAction) else "store"  # noqa: SLF001
        table.append({"option_strings": list(action.option_strings), "dest": action.dest,
                      "type": _TYPES.get(action.type, "str"), "default": action.default,
                      "required": bool(action.required), "nargs": action.nargs,
                      "choices": list(action.choices) if action.choices else None, "action": kind})
    return table
