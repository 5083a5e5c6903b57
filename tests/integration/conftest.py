"""Integration-test fixtures: the TAO emulator images, built offline on a real Docker engine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EMULATOR_DIR = Path(__file__).resolve().parents[1] / "emulator"


def _emulator_build_module():
    name = "tltpipe_emulator_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EMULATOR_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def emulator_images() -> dict[str, dict[str, str | None]]:
    """Build (or reuse) every emulator image; {"5.0": {"image": ..., "deploy_image": ...}, ...}.

    A missing Docker engine FAILS the tests instead of skipping them: CI always provides one, and
    a silent skip would hide that nothing was tested.
    """
    build = _emulator_build_module()
    ok, detail = build.docker_available()
    if not ok:
        pytest.fail(
            "The Docker engine is not reachable, so the TAO emulator images cannot be built "
            f"({detail}). Start dockerd (see .ci/run) and re-run.",
            pytrace=False,
        )
    try:
        build.build_all()
    except build.BuildError as exc:
        pytest.fail(f"Building the TAO emulator images failed: {exc}", pytrace=False)
    return build.version_table()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The bundled sample (CRPD layout) and a stand-in pretrained file, in a folder configs can point at."""
    from tlt_pipe.datasets.sample import sample_crpd

    root = tmp_path_factory.mktemp("sample")
    sample_crpd(root / "crpd", 24, 0)
    (root / "resnet_18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\nstand-in weights")
    return root
