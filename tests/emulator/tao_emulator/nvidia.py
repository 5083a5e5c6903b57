"""NVIDIA's own definitions the emulator follows, as data: the spec schemas (serialized
FileDescriptorSets of TAO's messages) and TAO Deploy's task options.

In an image they are files that tests/emulator/build.py generated from NVIDIA's wheels into the
package folder `definitions/` of the build context (never committed):

    definitions/schemas/<schema version>/<kind>.binpb   FileDescriptorSet of one spec kind
    definitions/schemas/roots.json                      kind -> root message name
    definitions/deploy_flags.json                       network -> Deploy task -> options

On the host (unit tests, tltpipe's conformance suite) there is no such folder: the same data is
computed from the wheels through tests/reference, found relative to this file.

The PyTorch networks (RT-DETR, DINO) validate their YAML specs with the ExperimentConfig dataclasses
of NVIDIA's nvidia-tao-core wheel (`nvidia_tao_core.config`): build.py copies that package into the
image's pylib/ folder (on PYTHONPATH); on the host `tao_core_on_path()` puts the copy that
tests/reference unpacks from the wheel on sys.path.
"""

from __future__ import annotations

import functools
import json
import os
import sys

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "definitions")
ROOTS_FILE = "schemas/roots.json"
DEPLOY_FILE = "deploy_flags.json"


def schema_file(schema_version: str, kind: str) -> str:
    return f"schemas/{schema_version}/{kind}.binpb"


def _generated() -> bool:
    return os.path.isdir(DATA_DIR)


def _read(name: str) -> bytes:
    with open(os.path.join(DATA_DIR, name), "rb") as fh:
        return fh.read()


def reference():
    """tests.reference (protos, deploy_cli), from the repository this package lives in."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from tests.reference import deploy_cli, protos  # noqa: PLC0415 - host only

    return protos, deploy_cli


@functools.lru_cache(maxsize=None)
def descriptor_set(schema_version: str, kind: str) -> bytes:
    """The serialized FileDescriptorSet of one spec kind ("ssd", "dataset_convert", ...)."""
    if _generated():
        return _read(schema_file(schema_version, kind))
    protos, _ = reference()
    return protos.descriptor_set(schema_version, kind).SerializeToString(deterministic=True)


@functools.lru_cache(maxsize=None)
def roots() -> dict[str, str]:
    """kind -> the name of its root message (TAO's protos have no package)."""
    if _generated():
        return json.loads(_read(ROOTS_FILE))
    protos, _ = reference()
    return {kind: root for kind, (_, root) in protos.ROOTS.items()}


@functools.lru_cache(maxsize=None)
def deploy_table() -> dict[str, dict[str, list[dict]]]:
    """network -> TAO Deploy task -> its options (tests/reference/deploy_cli.actions())."""
    if _generated():
        return json.loads(_read(DEPLOY_FILE))
    from . import catalog  # noqa: PLC0415

    _, deploy_cli = reference()
    return {net: {task: deploy_cli.actions(net, task) for task in catalog.DEPLOY_SUBCOMMANDS}
            for net in catalog.TF_NETS}


TAO_CORE_PREFIX = "nvidia_tao_core/config/"


def _tao_core_root() -> str:
    """Host only: the folder holding the wheel's nvidia_tao_core/config/ tree."""
    reference()
    from tests.reference.wheels import TAO_CORE, extracted  # noqa: PLC0415 - host only

    return str(extracted(TAO_CORE, TAO_CORE_PREFIX))


def tao_core_on_path() -> None:
    """Make `nvidia_tao_core.config` importable (in an image it already is)."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("nvidia_tao_core") is not None:
        return
    root = _tao_core_root()
    if root not in sys.path:
        sys.path.insert(0, root)


def tao_core_files() -> dict[str, bytes]:
    """What build.py copies into an image's pylib/: the nvidia_tao_core package of the wheel, as
    tests/reference unpacks it (host only)."""
    root = _tao_core_root()
    files = {}
    for folder, _, names in os.walk(os.path.join(root, "nvidia_tao_core")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as fh:
                    files[os.path.relpath(path, root)] = fh.read()
    return files


def generated_files(schema_versions, deploy: bool) -> dict[str, bytes]:
    """What build.py writes into an image's definitions/ folder (host only: reads the wheels)."""
    protos, _ = reference()
    files = {schema_file(version, kind): descriptor_set(version, kind)
             for version in schema_versions for kind in protos.ROOTS}
    files[ROOTS_FILE] = json.dumps(roots(), sort_keys=True, indent=1).encode()
    if deploy:
        files[DEPLOY_FILE] = json.dumps(deploy_table(), sort_keys=True, indent=1).encode()
    return files
