"""DockerRunner against the real Docker engine, with a tiny busybox image built offline.

Needs a running engine and a static busybox at /bin/busybox (Debian: busybox-static).
"""

from __future__ import annotations

import io
import os
import resource
import signal
import struct
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from tlt_pipe.errors import ImageMissing, TltPipeError
from tlt_pipe.runners.docker import LABEL_RUN, DockerRunner
from tlt_pipe.task import Mount, Task

pytestmark = pytest.mark.docker

IMAGE = "tltpipe-test-busybox:latest"
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "sleep", "cat", "printf", "id", "ls", "pwd", "df", "true", "false", "touch", "stat")
KEY = "k3y-0f-the-run"


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return False
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    types = [struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types  # PT_INTERP


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = BUSYBOX.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for directory, mode in (("tmp", 0o1777), ("work", 0o755)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
    return buf.getvalue()


@pytest.fixture(scope="module")
def engine():
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"the Docker engine is not reachable ({exc}); start dockerd or deselect with -m 'not docker'")
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(engine):
    """tltpipe-test-busybox:latest, imported from a tar of the host's static busybox."""
    try:
        engine.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} is missing: install it with 'apt-get install -y busybox-static'")
    if not _is_static_elf(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is not statically linked: install 'busybox-static' instead of 'busybox'")
    repository, tag = IMAGE.rsplit(":", 1)
    engine.api.import_image_from_data(_rootfs_tar(), repository=repository, tag=tag)
    return IMAGE


def _host_ulimits() -> dict[str, int]:
    # The default memlock -1 needs CAP_SYS_RESOURCE in dockerd, which a Docker engine running
    # inside a container may lack: ask for no more than this process may have.
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    return {"memlock": -1 if hard == resource.RLIM_INFINITY else hard, "stack": 67108864}


@pytest.fixture
def runner(image):
    return DockerRunner(gpus=0, shm_size="64M", ulimits=_host_ulimits(), stop_timeout=5)


@pytest.fixture
def labels(request):
    run_label = f"itest-{uuid.uuid4().hex[:8]}"
    yield {LABEL_RUN: run_label, "tltpipe.stage": request.node.name[:30]}
    # Whatever happened, leave nothing behind.
    for leftover in docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_label}"}):
        leftover.remove(force=True)


def sh(script: str, **fields) -> Task:
    return Task(image=IMAGE, argv=("sh", "-c", script), **fields)


def leftovers(runner: DockerRunner, labels: dict) -> list:
    return runner.find_jobs({LABEL_RUN: labels[LABEL_RUN]})


def test_exit_zero_output_streamed_live_and_logged(runner, labels, tmp_path):
    seen: list[tuple[float, str]] = []
    log_path = tmp_path / "logs" / "stage.log"
    result = runner.run(
        sh("echo first; echo to-stderr >&2; sleep 1; printf 'p1\\rp2\\rp3\\n'; printf 'no newline'"),
        log_path=log_path,
        labels=labels,
        on_line=lambda line: seen.append((time.monotonic(), line)),
    )
    assert result.exit_code == 0
    assert result.oom_killed is False and result.interrupted is False
    assert result.image_id == runner.image_id(IMAGE)
    assert [line for _, line in seen] == ["first", "to-stderr", "p3", "no newline"]
    assert seen[2][0] - seen[0][0] > 0.7, "lines arrived together: output is not streamed live"
    assert log_path.read_text() == "first\nto-stderr\np3\nno newline\n"
    assert leftovers(runner, labels) == []


def test_nonzero_exit_code(runner, labels, tmp_path):
    result = runner.run(sh("echo failing; exit 3"), log_path=tmp_path / "x.log", labels=labels)
    assert result.exit_code == 3
    assert (tmp_path / "x.log").read_text() == "failing\n"
    assert leftovers(runner, labels) == []


def test_secrets_redacted_and_labels_present(runner, labels, tmp_path):
    found = []

    def on_line(line):
        if not found:
            found.extend(leftovers(runner, labels))

    labels = {**labels, "note": f"with {KEY}"}
    lines = []
    result = runner.run(
        sh('echo "key=$TAO_KEY"; echo "$TAO_KEY" | cat; sleep 0.3', env=(("TAO_KEY", KEY),), secrets=(KEY,)),
        log_path=tmp_path / "s.log",
        labels=labels,
        on_line=lambda line: (lines.append(line), on_line(line)),
    )
    assert result.exit_code == 0
    assert lines == ["key=***", "***"]
    assert KEY not in (tmp_path / "s.log").read_text()
    (info,) = found
    assert info.labels["tltpipe"] == "1"
    assert info.labels[LABEL_RUN] == labels[LABEL_RUN]
    assert info.labels["tltpipe.stage"] == labels["tltpipe.stage"]
    assert info.labels["note"] == "with ***"
    assert info.name.startswith(f"tltpipe-{labels[LABEL_RUN]}-")
    assert KEY not in info.name
    assert info.status in ("running", "exited")
    assert leftovers(runner, labels) == []


def test_non_root_user_owns_what_it_writes_to_a_bind_mount(image, labels, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    runner = DockerRunner(gpus=0, shm_size="64M", ulimits=_host_ulimits(), user="4321:4322")
    lines = []
    result = runner.run(
        sh("id -u; id -g; pwd; echo $FOO; echo data > result.txt", mounts=(Mount(out, "/work/run"),),
           workdir="/work/run", env=(("FOO", "bar"),)),
        log_path=tmp_path / "u.log",
        labels=labels,
        on_line=lines.append,
    )
    assert result.exit_code == 0, lines
    assert lines == ["4321", "4322", "/work/run", "bar"]
    written = out / "result.txt"
    assert written.read_text() == "data\n"
    assert (written.stat().st_uid, written.stat().st_gid) == (4321, 4322)


def test_read_only_mount_cannot_be_written(runner, labels, tmp_path):
    ro = tmp_path / "pretrained"
    ro.mkdir()
    (ro / "model.hdf5").write_text("weights")
    lines = []
    result = runner.run(
        sh("cat /pretrained/model.hdf5; echo; echo x > /pretrained/new", mounts=(Mount(ro, "/pretrained", read_only=True),)),
        log_path=tmp_path / "ro.log",
        labels=labels,
        on_line=lines.append,
    )
    assert result.exit_code != 0
    assert lines[0] == "weights"
    assert any("Read-only file system" in line for line in lines), lines
    assert sorted(p.name for p in ro.iterdir()) == ["model.hdf5"]


def test_shm_size_and_ulimits_reach_the_container(runner, labels, tmp_path):
    lines = []
    runner.run(sh("ulimit -s; df -k /dev/shm"), log_path=tmp_path / "l.log", labels=labels, on_line=lines.append)
    assert lines[0] == "65536"  # stack 64 MiB, in KiB
    assert lines[-1].split()[1] == "65536"  # /dev/shm 64M, in KiB


def test_ctrl_c_raised_from_on_line_removes_the_container(runner, labels, tmp_path):
    def on_line(line):
        if line == "started":
            raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run(sh("echo started; sleep 60"), log_path=tmp_path / "c.log", labels=labels, on_line=on_line)
    assert time.monotonic() - start < 10
    assert leftovers(runner, labels) == []
    assert (tmp_path / "c.log").read_text() == "started\n"


def test_sigint_while_streaming_removes_the_container(runner, labels, tmp_path):
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run(sh("echo started; sleep 60"), log_path=tmp_path / "i.log", labels=labels)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 10
    assert leftovers(runner, labels) == []


def test_sigterm_as_system_exit_removes_the_container(runner, labels, tmp_path):
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(SystemExit) as info:
            runner.run(sh("sleep 60"), log_path=tmp_path / "t.log", labels=labels)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert info.value.code == 143
    assert time.monotonic() - start < 10
    assert leftovers(runner, labels) == []


def test_second_ctrl_c_during_the_stop_kills_at_once(runner, labels, tmp_path):
    # The task ignores SIGTERM, so the graceful stop would wait stop_timeout (5 s) for it.
    first = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    second = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    first.start()
    second.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run(sh("trap '' TERM; echo started; sleep 60"), log_path=tmp_path / "2.log", labels=labels)
        elapsed = time.monotonic() - start
    finally:
        first.cancel()
        second.cancel()
    assert elapsed < 4, f"took {elapsed:.1f}s: the second Ctrl-C did not cut the stop short"
    assert leftovers(runner, labels) == []


def test_gpu_request_without_nvidia_runtime_is_a_clear_error(engine, image, labels, tmp_path):
    if "nvidia" in (engine.info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime")
    runner = DockerRunner(gpus="all", shm_size="64M", ulimits=_host_ulimits())
    with pytest.raises(TltPipeError, match="NVIDIA Container Toolkit, or set gpus to 0"):
        runner.run(sh("true"), log_path=tmp_path / "g.log", labels=labels)
    assert leftovers(runner, labels) == []


def test_ensure_image(runner):
    assert runner.ensure_image(IMAGE) == runner.image_id(IMAGE)
    missing = "localhost:1/tltpipe/absent:0"
    assert runner.image_id(missing) is None
    with pytest.raises(ImageMissing) as info:
        runner.ensure_image(missing)
    message = str(info.value)
    assert message.startswith(f"image {missing} is not present locally and could not be pulled (")
    assert message.endswith(f"run 'docker login localhost:1' then 'docker pull {missing}' on a machine with access")
    assert "\n" not in message


def test_orphans_are_found_stopped_and_removed(engine, runner, labels):
    orphan = engine.containers.run(
        IMAGE, ["sleep", "60"], detach=True, init=True,
        labels={"tltpipe": "1", **labels}, name=f"tltpipe-orphan-{uuid.uuid4().hex[:8]}",
    )
    foreign = engine.containers.create(IMAGE, ["true"], labels={LABEL_RUN: labels[LABEL_RUN]})
    try:
        (info,) = leftovers(runner, labels)  # the foreign one lacks tltpipe=1
        assert info.id == orphan.id and info.status == "running"
        runner.stop_container(info.id, timeout=1)
        assert leftovers(runner, labels)[0].status == "exited"
        runner.remove_job(info.id)
        assert leftovers(runner, labels) == []
        runner.remove_job(info.id)  # gone already: fine
        with pytest.raises(TltPipeError, match="not created by tltpipe"):
            runner.remove_job(foreign.id)
    finally:
        foreign.remove(force=True)
        try:
            orphan.remove(force=True)
        except docker.errors.NotFound:
            pass
