"""DockerRunner against a fake Docker client: what it asks the engine, and that it always cleans up."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path
from types import SimpleNamespace

import docker
import docker.errors
import docker.types
import pytest
import requests.exceptions
from urllib3.exceptions import ProtocolError

from tlt_pipe.errors import DockerUnavailable, ImageMissing, Interrupted, TltPipeError
from tlt_pipe.runners import docker as runner_docker
from tlt_pipe.runners.base import JobInfo
from tlt_pipe.runners.docker import DockerRunner, container_name, device_requests
from tlt_pipe.task import Mount, RunResult, Task

IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5"
KEY = "s3cr3t-key"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")


def api_error(explanation: str, status: int = 500, cls=docker.errors.APIError):
    return cls(f"{status} Server Error", response=SimpleNamespace(status_code=status), explanation=explanation)


def refused_connection():
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", FileNotFoundError(2, "No such file or directory"))
    )


class FakeStream:
    """The attach stream: yields byte chunks; an exception instance in the list is raised instead."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.closed = False

    def __iter__(self):
        for chunk in self.chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    def close(self):
        self.closed = True


class FakeContainer:
    def __init__(self, client, kwargs):
        self.client = client
        self.kwargs = kwargs
        self.id = "c0ffee" + str(len(client.created))
        self.name = kwargs["name"]
        self.labels = kwargs.get("labels", {})
        self.status = "created"
        self.attrs = {"Image": "sha256:abc123", "State": {"OOMKilled": client.oom_killed}}
        self.stream = FakeStream(client.chunks)
        self.removed = False

    def attach(self, **kwargs):
        self.client.calls.append(("attach", kwargs))
        return self.stream

    def start(self):
        self.client.calls.append(("start",))
        if self.client.start_error is not None:
            raise self.client.start_error
        self.status = "running"

    def wait(self):
        self.client.calls.append(("wait",))
        self.status = "exited"
        return {"StatusCode": self.client.exit_code, "Error": None}

    def reload(self):
        self.client.calls.append(("reload",))

    def stop(self, timeout=None):
        self.client.calls.append(("stop", timeout))
        errors = self.client.stop_errors
        if errors:
            raise errors.pop(0)

    def remove(self, force=False, v=False):
        self.client.calls.append(("remove", force, v))
        errors = self.client.remove_errors
        if errors:
            raise errors.pop(0)
        self.removed = True
        self.client.existing.pop(self.name, None)


class FakeContainers:
    def __init__(self, client):
        self.client = client

    def create(self, **kwargs):
        if self.client.dropped_before_create:
            raise self.client.dropped_before_create.pop(0)
        self.client.created.append(kwargs)
        container = FakeContainer(self.client, kwargs)
        self.client.existing[container.name] = container
        self.client.last = container
        if self.client.create_error is not None:
            raise self.client.create_error
        return container

    def get(self, ref):
        self.client.calls.append(("get", ref))
        if self.client.get_error is not None:
            raise self.client.get_error
        for container in self.client.existing.values():
            if ref in (container.id, container.name):
                return container
        raise docker.errors.NotFound(f"No such container: {ref}")

    def list(self, **kwargs):
        self.client.calls.append(("list", kwargs))
        return list(self.client.existing.values())


class FakeImages:
    def __init__(self, client):
        self.client = client

    def get(self, name):
        if name in self.client.images_present:
            return SimpleNamespace(id="sha256:abc123")
        raise docker.errors.ImageNotFound(f"No such image: {name}")


class FakeApi:
    def __init__(self, client):
        self.client = client

    def pull(self, image, stream=False, decode=False):
        self.client.calls.append(("pull", image))
        if isinstance(self.client.pull_result, BaseException):
            raise self.client.pull_result
        for event in self.client.pull_result:
            if event.get("status", "").startswith("Status: Downloaded"):
                self.client.images_present.add(image)
            yield event


class FakeClient:
    def __init__(self, chunks=(b"hello\r\n",), exit_code=0):
        self.chunks = list(chunks)
        self.exit_code = exit_code
        self.oom_killed = False
        self.images_present = {IMAGE}
        self.create_error = None
        self.dropped_before_create: list[BaseException] = []
        self.get_error = None
        self.start_error = None
        self.stop_errors: list[BaseException] = []
        self.remove_errors: list[BaseException] = []
        self.pull_result: object = []
        self.created: list[dict] = []
        self.existing: dict[str, FakeContainer] = {}
        self.calls: list[tuple] = []
        self.containers = FakeContainers(self)
        self.images = FakeImages(self)
        self.api = FakeApi(self)

    def names(self, kind):
        return [call for call in self.calls if call[0] == kind]

    def cleaned_up(self, stop_timeout=10):
        return ("stop", stop_timeout) in self.calls and ("remove", True, True) in self.calls and not self.existing


def make_task(**overrides):
    fields = dict(
        image=IMAGE,
        argv=("ssd", "train", "-e", "/run/specs/train.txt", "-r", "/run/train", "-k", KEY),
        mounts=(
            Mount(Path("/data/runs/lpd"), "/run"),
            Mount(Path("/data/pretrained"), "/pretrained", read_only=True),
        ),
        env=(("TF_CPP_MIN_LOG_LEVEL", "2"),),
        workdir="/run",
        secrets=(KEY,),
    )
    fields.update(overrides)
    return Task(**fields)


def run(client, tmp_path, task=None, labels=None, runner=None, **kwargs):
    runner = runner or DockerRunner(client=client)
    return runner.run(
        task or make_task(),
        log_path=tmp_path / "logs" / "train.log",
        labels={"tltpipe.run": "lpd", "tltpipe.stage": "train"} if labels is None else labels,
        **kwargs,
    )


# -- what is asked of the engine ----------------------------------------------------------------


def test_create_kwargs_are_exact(tmp_path):
    client = FakeClient()
    run(client, tmp_path, runner=DockerRunner(client=client, user="1000:1000"))
    (kwargs,) = client.created
    name = kwargs.pop("name")
    assert re.fullmatch(r"tltpipe-lpd-train-[0-9a-f]{8}", name)
    assert kwargs == {
        "image": IMAGE,
        "command": ["ssd", "train", "-e", "/run/specs/train.txt", "-r", "/run/train", "-k", KEY],
        "labels": {"tltpipe.run": "lpd", "tltpipe.stage": "train", "tltpipe": "1"},
        "environment": {"TF_CPP_MIN_LOG_LEVEL": "2"},
        "mounts": [
            docker.types.Mount("/run", "/data/runs/lpd", type="bind", read_only=False),
            docker.types.Mount("/pretrained", "/data/pretrained", type="bind", read_only=True),
        ],
        "shm_size": "16G",
        "ulimits": [
            docker.types.Ulimit(name="memlock", soft=-1, hard=-1),
            docker.types.Ulimit(name="stack", soft=67108864, hard=67108864),
        ],
        "tty": True,
        "stdin_open": False,
        "init": True,
        "user": "1000:1000",
        "working_dir": "/run",
        "device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])],
    }
    assert kwargs["mounts"][1]["ReadOnly"] is True
    assert kwargs["mounts"][0]["ReadOnly"] is False


def test_launcher_docker_options_reach_the_container(tmp_path):
    client = FakeClient()
    runner = DockerRunner(client=client, network="host", privileged=True, ports={"8888": 8888}, tty=False)
    run(client, tmp_path, runner=runner)
    (kwargs,) = client.created
    assert (kwargs["network"], kwargs["privileged"], kwargs["ports"], kwargs["tty"]) == ("host", True, {"8888": 8888}, False)
    plain = FakeClient()
    run(plain, tmp_path, runner=DockerRunner(client=plain))
    assert not {"network", "privileged", "ports"} & set(plain.created[0])


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ("all", [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]),
        ([0, 2], [docker.types.DeviceRequest(device_ids=["0", "2"], capabilities=[["gpu"]])]),
        (2, [docker.types.DeviceRequest(count=2, capabilities=[["gpu"]])]),
        (0, None),
        ("none", None),
        ([], None),
    ],
)
def test_gpu_device_request(tmp_path, gpus, expected):
    client = FakeClient()
    run(client, tmp_path, runner=DockerRunner(client=client, gpus=gpus))
    assert client.created[0].get("device_requests") == expected
    if expected is None:
        assert "device_requests" not in client.created[0]


def test_device_request_for_a_list_names_device_ids():
    (request,) = device_requests([1])
    assert request["DeviceIDs"] == ["1"] and request["Capabilities"] == [["gpu"]]
    assert request["Count"] == 0


@pytest.mark.parametrize("gpus", ["two", -1, True, [True], [-1], 1.5, None])
def test_bad_gpus_setting_is_rejected(gpus):
    with pytest.raises(ValueError, match="gpus must be"):
        DockerRunner(client=FakeClient(), gpus=gpus)


def test_default_user_is_the_caller(tmp_path):
    client = FakeClient()
    run(client, tmp_path)
    assert client.created[0]["user"] == f"{os.getuid()}:{os.getgid()}"


def test_empty_user_keeps_the_image_user(tmp_path):
    client = FakeClient()
    run(client, tmp_path, runner=DockerRunner(client=client, user=""))
    assert "user" not in client.created[0]


def test_custom_shm_and_ulimits(tmp_path):
    client = FakeClient()
    run(client, tmp_path, runner=DockerRunner(client=client, shm_size="2G", ulimits={"nofile": 4096}))
    assert client.created[0]["shm_size"] == "2G"
    assert client.created[0]["ulimits"] == [docker.types.Ulimit(name="nofile", soft=4096, hard=4096)]


def test_no_workdir_leaves_the_image_default(tmp_path):
    client = FakeClient()
    run(client, tmp_path, task=make_task(workdir=None))
    assert "working_dir" not in client.created[0]


def test_without_tty_python_output_is_unbuffered(tmp_path):
    client = FakeClient(chunks=[b"a\n"])
    run(client, tmp_path, runner=DockerRunner(client=client, tty=False))
    assert client.created[0]["tty"] is False
    assert client.created[0]["environment"]["PYTHONUNBUFFERED"] == "1"


def test_relative_mount_source_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = FakeClient()
    run(client, tmp_path, task=make_task(mounts=(Mount(Path("runs/x"), "/run"),)))
    assert client.created[0]["mounts"][0]["Source"] == str(tmp_path / "runs" / "x")


def test_container_name_is_sanitized():
    name = container_name({"tltpipe.run": "my run/ä:1", "tltpipe.stage": "-train-"})
    assert re.fullmatch(r"tltpipe-my-run-1-train-[0-9a-f]{8}", name)
    assert NAME_RE.fullmatch(name)
    assert re.fullmatch(r"tltpipe-[0-9a-f]{8}", container_name({}))
    long = container_name({"tltpipe.run": "x" * 300})
    assert len(long) < 64 and NAME_RE.fullmatch(long)


def test_names_are_unique():
    labels = {"tltpipe.run": "a", "tltpipe.stage": "b"}
    assert len({container_name(labels) for _ in range(50)}) == 50


def test_tltpipe_label_cannot_be_overridden(tmp_path):
    client = FakeClient()
    run(client, tmp_path, labels={"tltpipe": "0"})
    assert client.created[0]["labels"]["tltpipe"] == "1"


# -- the run itself -----------------------------------------------------------------------------


def test_run_lifecycle_and_result(tmp_path):
    client = FakeClient(chunks=[b"Epoch 1/2\r\n", b"done\r\n"], exit_code=3)
    client.oom_killed = True
    lines = []
    result = run(client, tmp_path, on_line=lines.append)
    assert result == RunResult(
        exit_code=3, image_id="sha256:abc123", log_path=tmp_path / "logs" / "train.log", oom_killed=True
    )
    assert lines == ["Epoch 1/2", "done"]
    assert (tmp_path / "logs" / "train.log").read_text() == "Epoch 1/2\ndone\n"
    order = [call[0] for call in client.calls]
    assert order == ["attach", "start", "wait", "reload", "stop", "remove"]
    assert client.names("attach")[0][1] == {"stdout": True, "stderr": True, "stream": True, "logs": True}
    assert client.cleaned_up()
    assert client.created and not client.existing


def test_log_is_appended_and_parents_created(tmp_path):
    log = tmp_path / "logs" / "train.log"
    log.parent.mkdir()
    log.write_text("previous attempt\n")
    run(FakeClient(chunks=[b"again\n"]), tmp_path)
    assert log.read_text() == "previous attempt\nagain\n"
    run(FakeClient(chunks=[b"x\n"]), tmp_path / "deep" / "er")
    assert (tmp_path / "deep" / "er" / "logs" / "train.log").read_text() == "x\n"


def test_stop_timeout_is_used(tmp_path):
    client = FakeClient()
    run(client, tmp_path, runner=DockerRunner(client=client, stop_timeout=3))
    assert client.cleaned_up(stop_timeout=3)


def test_progress_redraws_go_to_on_progress_only(tmp_path):
    bar1 = "12/85 [===>..........................] - ETA: 15s - loss: 2.1043"
    bar2 = "13/85 [====>.........................] - ETA: 14s - loss: 2.0871"
    final = "85/85 [==============================] - 18s 210ms/step - loss: 1.7293"
    chunks = [
        b"Epoch 3/80\r\n",
        ("\r" + bar1).encode(),
        ("\b" * len(bar1) + "\r" + bar2).encode(),
        ("\b" * len(bar2) + "\r" + final + "\r\n").encode(),
        b"Epoch 00003: saving model to /run/train/weights/ssd_resnet18_epoch_003.hdf5\r\n",
    ]
    client = FakeClient(chunks=chunks)
    lines, progress = [], []
    run(client, tmp_path, on_line=lines.append, on_progress=progress.append)
    assert progress == [bar1, bar2]
    assert lines == [
        "Epoch 3/80",
        final,
        "Epoch 00003: saving model to /run/train/weights/ssd_resnet18_epoch_003.hdf5",
    ]
    assert (tmp_path / "logs" / "train.log").read_text() == "\n".join(lines) + "\n"


def test_output_without_final_newline_is_kept(tmp_path):
    lines = []
    run(FakeClient(chunks=[b"a\r\nlast words"]), tmp_path, on_line=lines.append)
    assert lines == ["a", "last words"]
    assert (tmp_path / "logs" / "train.log").read_text() == "a\nlast words\n"


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_are_redacted_from_lines_progress_and_log(tmp_path):
    chunks = [
        b"key is s3cr",  # split across chunks
        b"3t-key\r\n",
        f"\rusing {KEY} 1/2".encode(),
        f"\rusing {KEY} 2/2\r\n".encode(),
        f"ssd train -k {KEY}".encode(),
    ]
    client = FakeClient(chunks=chunks)
    lines, progress = [], []
    run(client, tmp_path, on_line=lines.append, on_progress=progress.append)
    assert lines == ["key is ***", "using *** 2/2", "ssd train -k ***"]
    assert progress == ["using *** 1/2"]
    log = (tmp_path / "logs" / "train.log").read_text()
    assert KEY not in log and log.count("***") == 3


def test_secrets_never_reach_labels_or_name(tmp_path):
    client = FakeClient()
    run(client, tmp_path, labels={"tltpipe.run": f"run-{KEY}", "note": KEY, f"k-{KEY}": "v"})
    kwargs = client.created[0]
    assert KEY not in kwargs["name"]
    assert KEY not in repr(kwargs["labels"])
    assert kwargs["labels"]["note"] == "***"


def test_secrets_are_redacted_from_error_messages(tmp_path):
    client = FakeClient()
    client.start_error = api_error(f'exec: "ssd -k {KEY}": executable file not found in $PATH')
    with pytest.raises(TltPipeError) as info:
        run(client, tmp_path)
    assert KEY not in str(info.value) and "***" in str(info.value)
    assert client.cleaned_up()


def test_secrets_are_redacted_from_create_errors(tmp_path):
    client = FakeClient()
    client.create_error = api_error(f"invalid argument {KEY}", status=400)
    with pytest.raises(TltPipeError) as info:
        run(client, tmp_path)
    assert KEY not in str(info.value)


# -- cleanup, always --------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(143), RuntimeError("boom")])
def test_interrupt_while_streaming_stops_and_removes(tmp_path, exc):
    client = FakeClient(chunks=[b"started\r\nhalf a li", exc, b"never\r\n"])
    with pytest.raises(type(exc)) as info:
        run(client, tmp_path)
    if isinstance(exc, SystemExit):
        assert info.value.code == 143
    assert client.cleaned_up()
    assert client.existing == {}
    assert (tmp_path / "logs" / "train.log").read_text() == "started\nhalf a li\n"


def test_stream_is_closed_on_interrupt(tmp_path):
    client = FakeClient(chunks=[KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path)
    assert client.last.stream.closed
    assert client.cleaned_up()


def test_interrupt_raised_by_on_line_cleans_up_and_keeps_the_batch_logged(tmp_path):
    client = FakeClient(chunks=[b"one\r\ntwo\r\nthree\r\n", b"four\r\n"])

    def on_line(line):
        if line == "one":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path, on_line=on_line)
    assert client.cleaned_up()
    assert (tmp_path / "logs" / "train.log").read_text() == "one\ntwo\nthree\n"


def test_interrupt_while_waiting_cleans_up(tmp_path):
    client = FakeClient()

    class Container(FakeContainer):
        def wait(self):
            raise KeyboardInterrupt

    client.containers.create = lambda **kw: client.existing.setdefault(kw["name"], Container(client, kw))
    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path)
    assert client.cleaned_up()


def test_second_ctrl_c_during_stop_still_removes_and_keeps_first_exception(tmp_path):
    first = KeyboardInterrupt("first")
    client = FakeClient(chunks=[first])
    client.stop_errors = [KeyboardInterrupt("second")]
    with pytest.raises(KeyboardInterrupt) as info:
        run(client, tmp_path)
    assert info.value is first
    assert ("remove", True, True) in client.calls and not client.existing


def test_ctrl_c_during_cleanup_after_success_is_raised_after_removal(tmp_path):
    client = FakeClient()
    client.stop_errors = [KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path)
    assert ("remove", True, True) in client.calls and not client.existing


def test_sigterm_exception_during_stop_still_removes(tmp_path):
    # The pipeline's SIGTERM handler may raise its own exception rather than SystemExit.
    client = FakeClient(chunks=[KeyboardInterrupt()])
    client.stop_errors = [Interrupted("terminated", exit_code=143)]
    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path)
    assert ("remove", True, True) in client.calls and not client.existing

    client = FakeClient()
    client.stop_errors = [Interrupted("terminated", exit_code=143)]
    with pytest.raises(Interrupted):
        run(client, tmp_path)
    assert ("remove", True, True) in client.calls and not client.existing


def test_ctrl_c_during_forced_removal_is_held_until_it_is_done(tmp_path):
    client = FakeClient()

    class Container(FakeContainer):
        def remove(self, force=False, v=False):
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C once more
            for _ in range(1000):  # give a deliverable signal every chance to interrupt
                pass
            super().remove(force=force, v=v)

    client.containers.create = lambda **kw: client.existing.setdefault(kw["name"], Container(client, kw))
    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path)
    assert ("remove", True, True) in client.calls and not client.existing


def test_interrupt_during_create_removes_the_container_by_name(tmp_path):
    client = FakeClient()
    client.create_error = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run(client, tmp_path)
    name = client.created[0]["name"]
    assert ("get", name) in client.calls
    assert not client.existing


def test_failed_stop_still_removes(tmp_path):
    client = FakeClient()
    client.stop_errors = [api_error("cannot stop container")]
    result = run(client, tmp_path)
    assert result.exit_code == 0
    assert not client.existing


def test_failed_removal_is_reported_not_raised(tmp_path, caplog):
    client = FakeClient()
    client.remove_errors = [api_error("driver failed to remove root filesystem")]
    result = run(client, tmp_path)
    assert result.exit_code == 0
    assert "could not remove container" in caplog.text


def test_start_failure_removes_the_container_and_explains_gpus(tmp_path):
    client = FakeClient()
    client.start_error = api_error('could not select device driver "" with capabilities: [[gpu]]')
    with pytest.raises(TltPipeError) as info:
        run(client, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "NVIDIA Container Toolkit" in message and "gpus to 0" in message
    assert client.cleaned_up()


def test_start_failure_explains_ulimits(tmp_path):
    client = FakeClient()
    client.start_error = api_error(
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
        "container process: error during container init: error setting rlimits for ready process: "
        "error setting rlimit type 8: operation not permitted: unknown"
    )
    with pytest.raises(TltPipeError) as info:
        run(client, tmp_path)
    assert str(info.value).startswith(
        f"the container for {IMAGE} could not start: error setting rlimits for ready process: "
        "error setting rlimit type 8: operation not permitted; the engine may not raise these ulimits "
        "(memlock=-1, stack=67108864)"
    )


def test_missing_image_that_cannot_be_pulled_creates_nothing(tmp_path):
    client = FakeClient()
    client.images_present = set()
    client.pull_result = api_error('Get "https://nvcr.io/v2/": dial tcp: lookup nvcr.io: no such host')
    with pytest.raises(ImageMissing):
        run(client, tmp_path)
    assert client.created == []


# -- the engine cannot be reached ---------------------------------------------------------------


def test_connection_lost_on_create_is_docker_unavailable(tmp_path):
    client = FakeClient()
    client.create_error = refused_connection()
    client.get_error = refused_connection()  # the engine is gone: the lookup by name fails too
    with pytest.raises(DockerUnavailable) as info:
        run(client, tmp_path)
    assert str(info.value) == (
        "cannot reach the Docker engine at unix:///var/run/docker.sock: No such file or directory; "
        "is dockerd running and may this user use it?"
    )


def dropped_connection():
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError("Remote end closed connection without response")))


def test_a_connection_dropped_before_create_is_tried_once_more(tmp_path):
    client = FakeClient()
    client.dropped_before_create = [dropped_connection()]
    result = run(client, tmp_path)
    assert result.exit_code == 0 and len(client.created) == 1 and client.cleaned_up()


def test_a_connection_dropped_after_create_adopts_the_container_by_its_name(tmp_path):
    client = FakeClient()
    client.create_error = dropped_connection()  # the engine created it, the answer was lost
    original = client.containers.create

    def create_once(**kwargs):
        try:
            return original(**kwargs)
        finally:
            client.create_error = None

    client.containers.create = create_once
    result = run(client, tmp_path)
    assert result.exit_code == 0 and len(client.created) == 1
    assert ("get", client.created[0]["name"]) in client.calls and client.cleaned_up()


def test_connection_lost_while_streaming_is_docker_unavailable_after_cleanup(tmp_path):
    client = FakeClient(chunks=[b"a\r\n", ConnectionResetError(104, "Connection reset by peer")])
    client.stop_errors = [refused_connection()]
    client.remove_errors = [refused_connection()]
    with pytest.raises(DockerUnavailable, match="Connection reset by peer"):
        run(client, tmp_path)
    assert ("remove", True, True) in client.calls


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (FileNotFoundError(2, "No such file or directory"), "No such file or directory"),
        (PermissionError(13, "Permission denied"), "Permission denied"),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
    ],
)
def test_connect_failures_are_one_line(monkeypatch, cause, reason):
    def from_env():
        inner = requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", cause))
        try:
            raise inner
        except requests.exceptions.ConnectionError as exc:
            raise docker.errors.DockerException(
                f"Error while fetching server API version: {exc}"
            ) from exc

    monkeypatch.setattr(runner_docker.docker, "from_env", from_env)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    runner = DockerRunner()  # connecting is lazy: the constructor never fails
    with pytest.raises(DockerUnavailable) as info:
        runner.image_id(IMAGE)
    assert str(info.value) == (
        f"cannot reach the Docker engine at unix:///var/run/docker.sock: {reason}; "
        "is dockerd running and may this user use it?"
    )
    with pytest.raises(DockerUnavailable):
        runner.run(make_task(), log_path=Path("/nonexistent/log"), labels={})


def test_missing_socket_is_docker_unavailable(tmp_path):
    runner = DockerRunner(base_url=f"unix://{tmp_path}/docker.sock")
    with pytest.raises(DockerUnavailable, match=r"docker\.sock: No such file or directory; is dockerd"):
        runner.find_jobs()


def test_dead_socket_is_docker_unavailable(tmp_path):
    path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))  # bound, never listening: connection refused
    try:
        with pytest.raises(DockerUnavailable, match="Connection refused"):
            DockerRunner(base_url=f"unix://{path}").image_id(IMAGE)
    finally:
        sock.close()


def test_docker_host_is_named_in_the_message(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    assert DockerRunner(client=FakeClient()).endpoint == "tcp://10.0.0.1:2375"


# -- images -------------------------------------------------------------------------------------


def test_image_id_present_and_missing():
    client = FakeClient()
    runner = DockerRunner(client=client)
    assert runner.image_id(IMAGE) == "sha256:abc123"
    assert runner.image_id("other:1") is None


def test_ensure_image_present_does_not_pull():
    client = FakeClient()
    assert DockerRunner(client=client).ensure_image(IMAGE) == "sha256:abc123"
    assert client.names("pull") == []


def test_ensure_image_pull_failure_is_one_clear_line():
    client = FakeClient()
    client.images_present = set()
    client.pull_result = api_error(
        'Get "https://nvcr.io/v2/": dial tcp: lookup nvcr.io on 10.0.0.53:53: no such host'
    )
    with pytest.raises(ImageMissing) as info:
        DockerRunner(client=client).ensure_image(IMAGE)
    assert str(info.value) == (
        f"image {IMAGE} is not present locally and could not be pulled "
        '(Get "https://nvcr.io/v2/": dial tcp: lookup nvcr.io on 10.0.0.53:53: no such host); '
        f"run 'docker login nvcr.io' then 'docker pull {IMAGE}' on a machine with access"
    )
    assert info.value.exit_code == 3


def test_ensure_image_error_event_in_pull_stream():
    client = FakeClient()
    client.images_present = set()
    client.pull_result = [
        {"status": "Pulling from nvidia/tao/tao-toolkit", "id": "5.0.0-tf1.15.5"},
        {"error": "unauthorized: authentication required", "errorDetail": {"message": "unauthorized:\nauthentication required"}},
    ]
    with pytest.raises(ImageMissing, match=r"\(unauthorized: authentication required\); run 'docker login nvcr.io'"):
        DockerRunner(client=client).ensure_image(IMAGE)


def test_ensure_image_docker_hub_name_suggests_plain_login():
    client = FakeClient()
    client.images_present = set()
    client.pull_result = api_error("pull access denied")
    with pytest.raises(ImageMissing, match=r"run 'docker login' then 'docker pull busybox:1'"):
        DockerRunner(client=client).ensure_image("busybox:1")


def test_ensure_image_pulls_with_progress():
    client = FakeClient()
    client.images_present = set()
    client.pull_result = [
        {"status": "Pulling from nvidia/tao/tao-toolkit", "id": "5.0.0-tf1.15.5"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1"},
        {"status": "Downloading", "progressDetail": {"current": 1}, "progress": "[>   ] 1MB/9MB", "id": "a1"},
        {"status": "Downloading", "progressDetail": {"current": 5}, "progress": "[==> ] 5MB/9MB", "id": "a1"},
        {"status": "Download complete", "progressDetail": {}, "id": "a1"},
        {"status": "Pull complete", "progressDetail": {}, "id": "a1"},
        {"status": "Digest: sha256:0123"},
        {"status": f"Status: Downloaded newer image for {IMAGE}"},
    ]
    lines, progress = [], []
    image_id = DockerRunner(client=client).ensure_image(IMAGE, lines.append, on_progress=progress.append)
    assert image_id == "sha256:abc123"
    assert lines == [
        "5.0.0-tf1.15.5: Pulling from nvidia/tao/tao-toolkit",
        "a1: Pulling fs layer",
        "a1: Download complete",
        "a1: Pull complete",
        "Digest: sha256:0123",
        f"Status: Downloaded newer image for {IMAGE}",
    ]
    assert progress == ["a1: Downloading [>   ] 1MB/9MB", "a1: Downloading [==> ] 5MB/9MB"]


# -- orphans ------------------------------------------------------------------------------------


def test_find_containers_filters_on_tltpipe_label(tmp_path):
    client = FakeClient()
    client.containers.create(name="tltpipe-lpd-train-1", labels={"tltpipe": "1", "tltpipe.run": "lpd"})
    found = DockerRunner(client=client).find_jobs({"tltpipe.run": "lpd"})
    (call,) = client.names("list")
    assert call[1] == {
        "all": True,
        "filters": {"label": ["tltpipe=1", "tltpipe.run=lpd"]},
        "ignore_removed": True,
    }
    assert found == [
        JobInfo(
            id="c0ffee1", name="tltpipe-lpd-train-1", status="created", labels={"tltpipe": "1", "tltpipe.run": "lpd"}
        )
    ]
    DockerRunner(client=client).find_jobs()
    assert client.names("list")[1][1]["filters"] == {"label": ["tltpipe=1"]}


def test_stop_and_remove_container():
    client = FakeClient()
    container = client.containers.create(name="tltpipe-x", labels={"tltpipe": "1"})
    runner = DockerRunner(client=client)
    runner.stop_container(container.id)
    assert ("stop", 10) in client.calls
    runner.stop_container(container.id, timeout=0)
    assert ("stop", 0) in client.calls
    runner.remove_job(container.id)
    assert ("remove", True, True) in client.calls and not client.existing
    runner.remove_job(container.id)  # already gone: fine
    runner.stop_container(container.id)


def test_foreign_containers_are_never_touched():
    client = FakeClient()
    container = client.containers.create(name="someone-elses", labels={})
    runner = DockerRunner(client=client)
    with pytest.raises(TltPipeError, match="not created by tltpipe"):
        runner.remove_job(container.id)
    with pytest.raises(TltPipeError, match="not created by tltpipe"):
        runner.stop_container(container.id)
    assert client.names("remove") == [] and client.names("stop") == []


def test_module_is_the_only_docker_importer():
    src = Path(runner_docker.__file__).resolve().parents[1]
    importers = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if re.search(r"^\s*(import docker\b|from docker\b)", path.read_text(), re.M)
    )
    assert importers == ["runners/docker.py"]
