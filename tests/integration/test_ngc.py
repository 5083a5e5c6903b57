"""NGC pretrained models through the real ngcsdk client, against a local stand-in of NGC's model API (ngc_standin):
the cache, offline re-runs, checksums, resume, and one-line errors. The example test pulls the SSD example's
pretrained model through it and runs it again with the network off."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket

import pytest
import yaml

from ngc_standin import KEY, StandIn
from tltpipe_cli import EXAMPLES, example_sets, examples_folder, manifest, tltpipe

# Not imported here: ngcsdk reads NGC_CLI_API_URL once, when tltpipe first imports it (after the stand-in is up).
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ngcsdk") is None, reason="ngcsdk is not installed")

MODEL = "nvidia/tao/pretrained_object_detection"
SAMPLE_WEIGHTS = b"\x89HDF\r\n\x1a\n" + b"tltpipe sample stand-in for the NGC resnet18 weights\n"


def _weights(seed: str, size: int) -> bytes:
    return (hashlib.sha256(seed.encode()).digest() * (size // 32 + 1))[:size]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    models = {MODEL: {"resnet18": {"resnet_18.hdf5": SAMPLE_WEIGHTS},
                      "resnet34": {"resnet_34.hdf5": _weights("34", 300_000)},
                      "two": {"a.hdf5": _weights("a", 5000), "b.hdf5": _weights("b", 7000), "README.txt": b"hello"}}}
    with StandIn(models, tmp_path_factory.mktemp("ngc")) as server:
        saved = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())  # ngcsdk reads them once, when tltpipe first imports it
        yield server
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture
def ngc(standin, tmp_path, monkeypatch):
    from tlt_pipe import ngc as module

    monkeypatch.setenv("TLTPIPE_CACHE", str(tmp_path / "cache"))
    for name in ("NGC_API_KEY", "NGC_CLI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    standin.require_key = standin.corrupt = standin.short = False
    standin.requests.clear()
    return module


def test_a_version_is_downloaded_once_checked_and_then_read_from_the_cache(ngc, standin, tmp_path):
    ref = ngc.parse_ref(f"ngc:{MODEL}:resnet34")
    lines: list[str] = []
    got = ngc.fetch(ref, on_line=lines.append)
    assert got.weights == tmp_path / "cache/ngc/nvidia/tao/pretrained_object_detection/resnet34/resnet_34.hdf5"
    assert got.weights.read_bytes() == _weights("34", 300_000)
    assert got.files == ({"path": "resnet_34.hdf5", "size": 300_000,
                          "sha256": hashlib.sha256(_weights("34", 300_000)).hexdigest()},)
    assert lines[0].startswith(f"downloading {ref} from NGC") and lines[-1].startswith("resnet_34.hdf5 [####################]")
    assert len(standin.downloads()) == 1 and not (got.folder.parent / ".partial-resnet34").exists()
    standin.requests.clear()
    again = ngc.fetch(ref)  # offline: nothing asked of NGC
    assert again == got and standin.requests == []
    assert got.record()["files"][0]["sha256"] == got.files[0]["sha256"] and got.record()["version"] == "resnet34"


def test_unknown_versions_and_models_name_what_exists(ngc):
    with pytest.raises(ngc.NgcError, match=f"{MODEL} has no version resnet99; its versions: two, resnet34, resnet18"):
        ngc.fetch(ngc.parse_ref(f"ngc:{MODEL}:resnet99"))
    with pytest.raises(ngc.NgcError, match="NGC has no model nvidia/tao/nothing_here"):
        ngc.fetch(ngc.parse_ref("ngc:nvidia/tao/nothing_here:v1"))


def test_a_model_that_needs_a_key_says_so_and_works_with_ngc_api_key(ngc, standin, monkeypatch):
    standin.require_key = True
    ref = ngc.parse_ref(f"ngc:{MODEL}:resnet18")
    with pytest.raises(ngc.NgcError, match=r"NGC refused access \(401\).*set NGC_API_KEY"):
        ngc.fetch(ref)
    monkeypatch.setenv("NGC_API_KEY", "wrong-key")
    with pytest.raises(ngc.NgcError, match="NGC did not accept NGC_API_KEY") as refused:
        ngc.fetch(ref)
    assert "wrong-key" not in str(refused.value)
    monkeypatch.setenv("NGC_API_KEY", KEY)
    assert ngc.fetch(ref).weights.read_bytes() == SAMPLE_WEIGHTS
    assert any(r.startswith("GET /v2/org/nvidia/team/tao/models/pretrained_object_detection") for r in standin.requests)


def test_a_corrupted_or_short_download_is_refused_and_leaves_no_cache(ngc, standin):
    ref = ngc.parse_ref(f"ngc:{MODEL}:resnet34")
    standin.corrupt = True
    with pytest.raises(ngc.NgcError, match="resnet_34.hdf5 is corrupted .*sha256.* run again"):
        ngc.fetch(ref)
    assert ngc.cached(ref) is None and not ngc.folder_of(ref).exists()
    standin.corrupt, standin.short = False, True
    with pytest.raises(ngc.NgcError, match="resnet_34.hdf5 (did not complete|is corrupted)"):
        ngc.fetch(ref)
    standin.short = False
    assert ngc.fetch(ref).weights.stat().st_size == 300_000


def test_an_interrupted_download_resumes_with_the_files_it_has(ngc, standin):
    ref = ngc.parse_ref(f"ngc:{MODEL}:two/b.hdf5")
    partial = ngc.folder_of(ref).parent / ".partial-two"
    partial.mkdir(parents=True)
    (partial / "a.hdf5").write_bytes(_weights("a", 5000))  # fetched and whole before the interruption
    (partial / "README.txt").write_bytes(b"hel")  # cut off
    got = ngc.fetch(ref)
    assert sorted(r.rsplit("/", 1)[1] for r in standin.downloads()) == ["README.txt", "b.hdf5"]
    assert got.weights.name == "b.hdf5" and (got.folder / "README.txt").read_bytes() == b"hello"


def test_a_version_with_several_weights_files_asks_which(ngc, standin):
    with pytest.raises(ngc.NgcError, match=r"more than one weights file .*a\.hdf5, b\.hdf5.*/FILE"):
        ngc.fetch(ngc.parse_ref(f"ngc:{MODEL}:two"))
    with pytest.raises(ngc.NgcError, match="has no file c.hdf5; its files: README.txt, a.hdf5, b.hdf5"):
        ngc.fetch(ngc.parse_ref(f"ngc:{MODEL}:two/c.hdf5"))
    assert standin.downloads() == []  # nothing fetched for a wrong request


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.docker
def test_the_ssd_example_pulls_its_model_through_ngcsdk_then_runs_offline(emulator_images, standin, tmp_path):
    folder = examples_folder(tmp_path / "examples")
    config = folder / "lpd.yaml"
    shutil.copy(EXAMPLES / "lpd.yaml", config)
    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    sets = [*example_sets(emulator_images[str(written["toolkit"])]), f"model.pretrained=ngc:{MODEL}:resnet18"]
    args = [arg for item in sets for arg in ("--set", item)]
    env = {**standin.env(), "TLTPIPE_CACHE": str(tmp_path / "cache")}
    dry = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "run"), "--dry-run", *args,
                  cwd=folder, env=env)
    assert dry.returncode == 0 and "<downloaded when the run starts>" in dry.stdout and standin.downloads() == []
    done = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "run"), "--to", "train", "--plain",
                   *args, cwd=folder, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"downloading ngc:{MODEL}:resnet18 from NGC" in done.stdout and len(standin.downloads()) == 1
    record = manifest(tmp_path / "run")["pretrained"]
    assert record["ngc"] == f"ngc:{MODEL}:resnet18" and record["file"] == "resnet_18.hdf5"
    assert record["files"] == [{"path": "resnet_18.hdf5", "size": len(SAMPLE_WEIGHTS),
                                "sha256": hashlib.sha256(SAMPLE_WEIGHTS).hexdigest()}]
    train = manifest(tmp_path / "run")["stages"]["train"]
    assert train["status"] == "succeeded"

    offline = {**env, "NGC_CLI_API_URL": _dead_url(), "NGC_CLI_AUTH_URL": _dead_url()}  # the network is off
    again = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "again"), "--to", "train",
                    "--plain", *args, cwd=folder, env=offline)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "downloading" not in again.stdout and len(standin.downloads()) == 1
    assert manifest(tmp_path / "again")["pretrained"] == record

    fresh = {**offline, "TLTPIPE_CACHE": str(tmp_path / "empty-cache")}  # offline and nothing cached: one line, exit 2
    down = tltpipe("run", "ssd", "--config", str(config), "--run-dir", str(tmp_path / "down"), "--plain", *args,
                   cwd=folder, env=fresh)
    assert down.returncode == 2, down.stdout + down.stderr
    assert "cannot reach NGC" in down.stderr and "not in the cache" in down.stderr and "Traceback" not in down.stderr
