"""TAO's spec messages per version, rebuilt from the serialized descriptors inside NVIDIA's wheels.

Each `*_pb2.py` in the wheels holds its .proto file as a serialized FileDescriptorProto (a bytes
literal, or a latin-1 string in protoc 3's output). It is read with `ast`, never imported. TAO's
protos have no package, so several files define `Experiment`: each spec root gets a pool of its own
holding its file and what it imports.

Versions: "4.0" is TAO 4.0 (nvidia-tao-tf1; TAO 3.21.11 and 3.22.05 are judged by it), "5.0" is
TAO 5.x (nvidia-tao-deploy).
"""

from __future__ import annotations

import ast
from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.reference import wheels

# version -> (wheel, the folder its networks live under)
SOURCES = {"4.0": (wheels.TF1, "iva/"), "5.0": (wheels.DEPLOY, "nvidia_tao_deploy/cv/")}

# What tltpipe writes -> (proto file under the version's folder, root message).
ROOTS = {
    "ssd": ("ssd/proto/experiment.proto", "Experiment"),
    "dssd": ("ssd/proto/experiment.proto", "Experiment"),
    "retinanet": ("retinanet/proto/experiment.proto", "Experiment"),
    "yolo_v3": ("yolo_v3/proto/experiment.proto", "Experiment"),
    "yolo_v4": ("yolo_v4/proto/experiment.proto", "Experiment"),
    "yolo_v4_tiny": ("yolo_v4/proto/experiment.proto", "Experiment"),
    "detectnet_v2": ("detectnet_v2/proto/experiment.proto", "Experiment"),
    "detectnet_v2_inference": ("detectnet_v2/proto/inference.proto", "Inference"),
    "dataset_convert": ("detectnet_v2/proto/dataset_export_config.proto", "DatasetExportConfig"),
}


def _serialized(source: str, path: str) -> bytes | None:
    """The serialized FileDescriptorProto in one generated module, or None."""
    for node in ast.walk(ast.parse(source, filename=path)):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr == "AddSerializedFile" and node.args:
            value = node.args[0]
            if isinstance(value, ast.Constant) and isinstance(value.value, bytes):
                return value.value
        for keyword in node.keywords:
            if keyword.arg != "serialized_pb":
                continue
            value = keyword.value
            if isinstance(value, ast.Call) and value.args:  # _b('...'): latin-1 text of the bytes
                value = value.args[0]
            if isinstance(value, ast.Constant):
                data = value.value
                return data if isinstance(data, bytes) else data.encode("latin1")
    return None


@cache
def files(version: str) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Every .proto file of a version's wheel: proto path -> FileDescriptorProto."""
    wheel, _ = SOURCES[version]
    found: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name, data in wheels.members(wheel).items():
        if not name.endswith("_pb2.py"):
            continue
        blob = _serialized(data.decode("utf-8"), name)
        if blob is None:
            continue
        proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        found[proto.name] = proto
    return found


def closure(version: str, root_file: str) -> list[descriptor_pb2.FileDescriptorProto]:
    """root_file and everything it imports, dependencies first."""
    known = files(version)
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        proto = known[name]
        for dependency in proto.dependency:
            visit(dependency)
        ordered.append(proto)

    visit(root_file)
    return ordered


def root_file(version: str, kind: str) -> str:
    _, folder = SOURCES[version]
    return folder + ROOTS[kind][0]


@cache
def descriptor(version: str, kind: str):
    """The root message descriptor of one spec kind ("ssd", "dataset_convert", ...) in one version."""
    pool = descriptor_pool.DescriptorPool()
    for proto in closure(version, root_file(version, kind)):
        pool.Add(proto)
    return pool.FindMessageTypeByName(ROOTS[kind][1])


def message_class(version: str, kind: str):
    return message_factory.GetMessageClass(descriptor(version, kind))


def descriptor_set(version: str, kind: str) -> descriptor_pb2.FileDescriptorSet:
    """The files one spec kind needs, as a FileDescriptorSet (what the emulator images load)."""
    result = descriptor_pb2.FileDescriptorSet()
    result.file.extend(closure(version, root_file(version, kind)))
    return result
