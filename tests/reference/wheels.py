"""The two NVIDIA wheels that carry TAO's definitions, fetched once into a cache and read as zip files.

    python -m tests.reference.wheels        # fetch both (prints where they are)

The cache is $TLTPIPE_REFERENCE_CACHE, else ~/.cache/tltpipe/reference. A wheel is downloaded with
`pip download --no-deps` and never installed or imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    project: str
    version: str
    what: str

    @property
    def filename(self) -> str:
        return f"{self.project.replace('-', '_')}-{self.version}-py3-none-any.whl"


# TAO 4.0's TF1 backend (spec schemas as serialized descriptors; the code itself is obfuscated).
TF1 = Wheel("nvidia-tao-tf1", "4.0.0.657.dev0", "TAO 4.0 spec schemas")
# TAO Deploy: the TAO 5.x messages of the same networks and the gen_trt_engine/evaluate/inference parsers.
DEPLOY = Wheel("nvidia-tao-deploy", "6.26.3", "TAO 5.x spec schemas and TAO Deploy task parsers")
# TAO's PyTorch networks (RT-DETR, DINO, ...): the ExperimentConfig dataclasses their YAML specs are merged into.
# NVIDIA's proprietary licence: read from the cache at test time, never shipped with tltpipe.
TAO_CORE = Wheel("nvidia-tao-core", "7.3.0", "TAO PyTorch experiment configs (nvidia_tao_core.config)")
WHEELS = (TF1, DEPLOY, TAO_CORE)


class ReferenceUnavailable(RuntimeError):
    """A wheel could not be fetched (no package index reachable, and nothing cached)."""


def cache_dir() -> Path:
    configured = os.environ.get("TLTPIPE_REFERENCE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "tltpipe" / "reference"


def fetch(wheel: Wheel) -> Path:
    """The wheel's path in the cache, downloading it first when it is not there."""
    target = cache_dir() / wheel.filename
    if target.is_file() and zipfile.is_zipfile(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                "--disable-pip-version-check", "-q", "-d", tmp, f"{wheel.project}=={wheel.version}"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        got = Path(tmp) / wheel.filename
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ReferenceUnavailable(f"cannot fetch {wheel.project}=={wheel.version} ({wheel.what}): {tail[0]}")
        os.replace(got, target)
    return target


@cache
def members(wheel: Wheel) -> dict[str, bytes]:
    """Every .py file of the wheel: archive path -> bytes."""
    with zipfile.ZipFile(fetch(wheel)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name.endswith(".py")}


def extracted(wheel: Wheel, prefix: str) -> Path:
    """A folder holding the wheel's files under prefix (e.g. "nvidia_tao_core/config/"), unpacked once into
    the cache; put it on sys.path to import them. Only .py files are unpacked."""
    root = cache_dir() / f"{wheel.project}-{wheel.version}"
    done = root / f".unpacked-{prefix.strip('/').replace('/', '.')}"
    if done.is_file():
        return root
    files = {name: data for name, data in members(wheel).items() if name.startswith(prefix)}
    if not files:
        raise ReferenceUnavailable(f"{wheel.project}=={wheel.version} has no files under {prefix}")
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    # The package folders above the prefix, so `import nvidia_tao_core.config...` resolves.
    parts = prefix.strip("/").split("/")
    for depth in range(1, len(parts)):
        init = root.joinpath(*parts[:depth], "__init__.py")
        if not init.exists():
            init.write_text("", encoding="utf-8")
    done.write_text("", encoding="utf-8")
    return root


def main() -> int:
    try:
        for wheel in WHEELS:
            print(fetch(wheel))
    except ReferenceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
