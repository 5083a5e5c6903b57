"""Run a Task in a local Docker container. The only module of tltpipe that imports ``docker``.

What a run does, in order:

1. resolve the image locally (pulling it when missing, see ``ensure_image``);
2. create the container: the task's argv, bind mounts, environment and working directory,
   the caller's uid:gid, a GPU device request, shm size, ulimits, the caller's labels plus
   ``tltpipe=1``, a name ``tltpipe-<run>-<stage>-<random>``, a terminal (``tty``) so the
   task's Python output is line buffered, and ``init`` so that a stop signal reaches it;
3. attach to its output, then start it (as ``docker run`` does: nothing is missed);
4. split the output into lines (``tlt_pipe.logstream``), redact the task's secrets from every
   line, append complete lines to the log file and hand them to ``on_line``; in-place
   progress redraws (Keras progress bars) go to ``on_progress`` only, never to the log;
5. wait for the exit code and the OOM flag;
6. stop (``stop_timeout`` seconds, then SIGKILL) and remove the container. Always: on
   success, on failure, on any exception, on KeyboardInterrupt and SystemExit (re-raised
   after the cleanup). A second Ctrl-C during the graceful stop skips straight to a forced
   removal.

Errors leave as one-line tltpipe errors with secrets redacted: ``DockerUnavailable`` when the
engine cannot be reached, ``ImageMissing`` when an image is absent and cannot be pulled,
``TltPipeError`` when the engine refuses to create or start the container.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from tlt_pipe.errors import DockerUnavailable, ImageMissing, TltPipeError
from tlt_pipe.logstream import LineSplitter, deliver as _deliver
from tlt_pipe.runners.base import Cancelled, JobEnd, JobInfo, OnLine
from tlt_pipe.secrets import redact
from tlt_pipe.task import RunResult, Task

log = logging.getLogger(__name__)

# Every container tltpipe creates carries LABEL=1; find_jobs and the orphan helpers
# only ever see and touch those.
LABEL = "tltpipe"
LABEL_RUN = "tltpipe.run"
LABEL_STAGE = "tltpipe.stage"

DEFAULT_ULIMITS: Mapping[str, int] = {"memlock": -1, "stack": 67108864}
DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"

# Called with the current state of a line being redrawn in place (secrets redacted).
OnProgress = Callable[[str], None]

# Errors that mean "the engine went away", whichever layer raises them.
_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
)

_NAME_PART = re.compile(r"[^A-Za-z0-9_.-]+")


class DockerRunner:
    """Runs Tasks in containers of the local Docker engine.

    gpus: "all", a positive count, a list of GPU indices, or 0 / "none" / [] for no GPU request.
    shm_size: docker's size string for /dev/shm. ulimits: name -> value, set as soft = hard
    (default memlock -1, stack 64 MiB). user: "uid:gid" inside the container (default: the
    caller's, so outputs are owned by the caller; "" keeps the image's user). client: a
    docker.DockerClient (tests inject a fake); by default one is made on first use from the
    environment (DOCKER_HOST ...) or base_url. tty: give the task a terminal (line-buffered
    Python output, Keras progress bars); without it PYTHONUNBUFFERED=1 is added unless set.
    init: run docker's init as PID 1 so the stop signal reaches the task and zombies are reaped.
    """

    def __init__(
        self,
        gpus: str | int | Sequence[int] = "all",
        shm_size: str = "16G",
        ulimits: Mapping[str, int] | None = None,
        user: str | None = None,
        client: Any = None,
        stop_timeout: int = 10,
        *,
        base_url: str | None = None,
        tty: bool = True,
        init: bool = True,
        network: str | None = None,
        privileged: bool = False,
        ports: Mapping[str, Any] | None = None,
    ) -> None:
        self.gpus = gpus
        self._device_requests = device_requests(gpus)
        self.shm_size = shm_size
        self.ulimits = dict(DEFAULT_ULIMITS if ulimits is None else ulimits)
        self.user = f"{os.getuid()}:{os.getgid()}" if user is None else user
        self.stop_timeout = stop_timeout
        self.tty = tty
        self.init = init
        self.network = network
        self.privileged = privileged
        self.ports = dict(ports or {})
        self._base_url = base_url
        self._client = client

    # -- engine connection ---------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Where the engine is expected, for messages."""
        return self._base_url or os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT

    def _docker(self) -> Any:
        """The client, connected on first use. The one place a connection is made."""
        if self._client is None:
            try:
                if self._base_url:
                    client = docker.DockerClient(base_url=self._base_url)
                else:
                    client = docker.from_env()
                client.ping()
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                raise self._unavailable(exc) from None
            self._client = client
        return self._client

    def _unavailable(self, exc: BaseException, secrets: Iterable[str] = ()) -> DockerUnavailable:
        message = (
            f"cannot reach the Docker engine at {self.endpoint}: {_reason(exc)}; "
            "is dockerd running and may this user use it?"
        )
        return DockerUnavailable(redact(message, secrets))

    @contextmanager
    def _engine(self, secrets: Iterable[str] = ()) -> Iterator[None]:
        """Turn a lost connection during an engine call into DockerUnavailable."""
        try:
            yield
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, secrets) from None

    # -- images ----------------------------------------------------------------------------

    def image_id(self, image: str) -> str | None:
        """The local id of an image reference, or None when it is not present."""
        client = self._docker()
        try:
            with self._engine():
                return client.images.get(image).id
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                return None  # e.g. an invalid reference: it cannot be present
            raise TltPipeError(f"cannot inspect image {image}: {_reason(exc)}") from None

    def engine_info(self) -> dict[str, Any]:
        """What `tltpipe doctor` reports of the engine: versions, runtimes, storage root, CPUs, memory."""
        client = self._docker()
        try:
            with self._engine():
                version = client.version()
                info = client.info()
        except docker.errors.APIError as exc:
            raise TltPipeError(f"cannot query the Docker engine: {_reason(exc)}") from None
        return {
            "version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
            "runtimes": sorted((info.get("Runtimes") or {}).keys()),
            "default_runtime": info.get("DefaultRuntime"),
            "root_dir": info.get("DockerRootDir"),
            "cpus": info.get("NCPU"),
            "memory": info.get("MemTotal"),
            "endpoint": self.endpoint,
        }

    def ensure_image(
        self,
        image: str,
        on_line: OnLine | None = None,
        *,
        on_progress: OnProgress | None = None,
    ) -> str:
        """The local id of the image, pulling it first when it is missing.

        Pull events go to on_line once per layer and status ("a1b2c3: Pull complete"), byte
        counts ("a1b2c3: Downloading [==>  ] 12MB/1.2GB") to on_progress. Raises ImageMissing
        when the image is missing and the pull fails.
        """
        found = self.image_id(image)
        if found:
            return found
        reason = self._pull(image, on_line, on_progress)
        found = self.image_id(image)
        if found:
            return found
        registry = _registry(image)
        login = f"docker login {registry}" if registry else "docker login"
        raise ImageMissing(
            f"image {image} is not present locally and could not be pulled ({reason}); "
            f"run '{login}' then 'docker pull {image}' on a machine with access"
        )

    def _pull(self, image: str, on_line: OnLine | None, on_progress: OnProgress | None) -> str:
        """Pull the image; the short reason when it failed."""
        client = self._docker()
        seen: set[tuple[str, str]] = set()
        try:
            with self._engine():
                for event in client.api.pull(image, stream=True, decode=True):
                    if "error" in event:
                        detail = event.get("errorDetail") or {}
                        return _one_line(str(detail.get("message") or event["error"]))
                    status = str(event.get("status", ""))
                    layer = event.get("id")
                    text = f"{layer}: {status}" if layer else status
                    progress = event.get("progress")
                    if progress:
                        if on_progress is not None:
                            on_progress(f"{text} {progress}")
                    elif (str(layer), status) not in seen:
                        seen.add((str(layer), status))
                        if on_line is not None and text:
                            on_line(text)
        except docker.errors.APIError as exc:
            return _reason(exc)
        return "the pull ended without the image"

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        task: Task,
        *,
        log_path: Path,
        labels: Mapping[str, str],
        on_line: OnLine | None = None,
        on_progress: OnProgress | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run the task to completion and return how it ended (see the module docstring).

        on_line gets each complete line, on_progress each new state of a line being redrawn
        in place with carriage returns (both redacted). Only complete lines reach log_path,
        which is appended to (its parent directories are created). Setting cancel stops the container
        gracefully (as Ctrl-C does) from a watcher thread; run then removes it and raises Cancelled.
        """
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        secrets = [s for s in task.secrets if s]
        client = self._docker()
        self.ensure_image(task.image)
        kwargs = self.create_kwargs(task, labels)
        name = kwargs["name"]
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)

        container = None
        stream = None
        with open(log_path, "a", encoding="utf-8") as log_file:
            try:
                container = self._create(client, kwargs, task.image, secrets)
                with self._engine(secrets):
                    stream = container.attach(stdout=True, stderr=True, stream=True, logs=True)
                self._start(container, task.image, secrets)
                with _stopped_when(cancel, partial(self._stop_quietly, container)):
                    self._pump(stream, log_file, secrets, on_line, on_progress)
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                with self._engine(secrets):
                    status = container.wait()
                    container.reload()
                state = container.attrs.get("State") or {}
                result = RunResult(
                    exit_code=int(status.get("StatusCode", -1)),
                    image_id=str(container.attrs.get("Image") or ""),
                    log_path=log_path,
                    oom_killed=bool(state.get("OOMKilled", False)),
                )
            except BaseException:
                self._cleanup(client, container, name, stream, propagating=True)
                raise
        self._cleanup(client, container, name, stream, propagating=False)
        return result

    def create_kwargs(self, task: Task, labels: Mapping[str, str]) -> dict[str, Any]:
        """The keyword arguments for containers.create (a fresh random name each call)."""
        secrets = [s for s in task.secrets if s]
        clean_labels = {redact(str(k), secrets): redact(str(v), secrets) for k, v in labels.items()}
        clean_labels[LABEL] = "1"
        environment = dict(task.env)
        if not self.tty:
            environment.setdefault("PYTHONUNBUFFERED", "1")
        kwargs: dict[str, Any] = {
            "image": task.image,
            "command": list(task.argv),
            "name": container_name(clean_labels),
            "labels": clean_labels,
            "environment": environment,
            "mounts": [
                docker.types.Mount(
                    target=m.container,
                    source=str(Path(m.host).absolute()),
                    type="bind",
                    read_only=m.read_only,
                )
                for m in task.mounts
            ],
            "shm_size": self.shm_size,
            "ulimits": [
                docker.types.Ulimit(name=name, soft=value, hard=value)
                for name, value in self.ulimits.items()
            ],
            "tty": self.tty,
            "stdin_open": False,
            "init": self.init,
        }
        if self.user:
            kwargs["user"] = self.user
        if task.workdir:
            kwargs["working_dir"] = task.workdir
        requests = self._device_requests if task.gpus is None else device_requests(list(task.gpus))
        if requests:
            kwargs["device_requests"] = list(requests)
        if self.network:
            kwargs["network"] = self.network
        if self.privileged:
            kwargs["privileged"] = True
        if self.ports:
            kwargs["ports"] = dict(self.ports)
        return kwargs

    def _create(self, client: Any, kwargs: dict[str, Any], image: str, secrets: list[str]) -> Any:
        """A connection the engine drops mid-call (a kept-alive socket it closed under load) is tried
        once more: the container may exist already, so it is first looked up by the name asked for."""
        try:
            return self._create_once(client, kwargs, image, secrets)
        except DockerUnavailable:
            try:
                with self._engine(secrets):
                    return client.containers.get(kwargs["name"])
            except docker.errors.NotFound:
                return self._create_once(client, kwargs, image, secrets)

    def _create_once(self, client: Any, kwargs: dict[str, Any], image: str, secrets: list[str]) -> Any:
        try:
            with self._engine(secrets):
                return client.containers.create(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(
                redact(f"image {image} disappeared before its container was created: {_reason(exc)}", secrets)
            ) from None
        except docker.errors.APIError as exc:
            raise TltPipeError(
                redact(f"the Docker engine refused to create a container for {image}: {_reason(exc)}", secrets)
            ) from None

    def _start(self, container: Any, image: str, secrets: list[str]) -> None:
        try:
            try:
                with self._engine(secrets):
                    container.start()
            except DockerUnavailable:  # a dropped connection: starting again is harmless (304)
                with self._engine(secrets):
                    container.start()
        except docker.errors.APIError as exc:
            reason = _one_line(_runtime_reason(str(exc.explanation or exc)))
            hint = ""
            if "capabilities: [[gpu]]" in reason or "nvidia" in reason.lower():
                hint = (
                    "; GPUs were requested but the engine has no NVIDIA runtime: install the "
                    "NVIDIA Container Toolkit, or set gpus to 0 to run without a GPU"
                )
            elif "rlimit" in reason:
                hint = (
                    f"; the engine may not raise these ulimits ({self._ulimits_text()}), e.g. when "
                    "dockerd itself runs in a container without CAP_SYS_RESOURCE: lower them"
                )
            raise TltPipeError(
                redact(f"the container for {image} could not start: {reason}{hint}", secrets)
            ) from None

    def _ulimits_text(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.ulimits.items())

    def _pump(
        self,
        stream: Iterable[bytes],
        log_file: IO[str],
        secrets: list[str],
        on_line: OnLine | None,
        on_progress: OnProgress | None,
    ) -> None:
        """Copy the container's output to the log and the callbacks until it ends."""
        splitter = LineSplitter()
        chunks = iter(stream)
        try:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except _CONNECTION_ERRORS as exc:
                    raise self._unavailable(exc, secrets) from None
                _deliver(splitter.feed(chunk), log_file, secrets, on_line, on_progress)
        except BaseException:
            # Keep the unfinished line in the log, but call nobody while unwinding.
            _deliver(splitter.close(), log_file, secrets, None, None)
            raise
        _deliver(splitter.close(), log_file, secrets, on_line, on_progress)

    def _cleanup(self, client: Any, container: Any, name: str, stream: Any, *, propagating: bool) -> None:
        """Stop and remove the container, whatever happened. Never raises while unwinding.

        An interrupt during the graceful stop (a second Ctrl-C, or whatever exception a SIGTERM
        handler raises) cuts it short: the container is then removed by force, with SIGINT and
        SIGTERM held back for that one call, and the interrupt is re-raised unless another
        exception is already propagating.
        """
        interrupt: BaseException | None = None
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass
        try:
            if container is None:
                # Interrupted while creating: the container may exist under its name.
                container = self._lookup(client, name)
            if container is not None:
                self._stop_quietly(container)
        except BaseException as exc:  # engine errors are handled inside: this is an interrupt
            interrupt = exc
        if container is not None:
            try:
                with _signals_held():
                    self._remove_quietly(container)
            except BaseException as exc:
                interrupt = interrupt or exc
        if interrupt is not None and not propagating:
            raise interrupt

    def _lookup(self, client: Any, name: str) -> Any:
        try:
            with self._engine():
                return client.containers.get(name)
        except (docker.errors.APIError, DockerUnavailable):
            return None

    def _stop_quietly(self, container: Any) -> None:
        try:
            with self._engine():
                container.stop(timeout=self.stop_timeout)
        except (docker.errors.APIError, DockerUnavailable) as exc:
            # Already gone, or the engine is unreachable: the removal below tries anyway.
            log.debug("stopping container %s: %s", _ident(container), _reason(exc))

    def _remove_quietly(self, container: Any) -> None:
        try:
            with self._engine():
                container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, DockerUnavailable) as exc:
            if getattr(exc, "status_code", None) == 409 and "in progress" in _reason(exc):
                return  # the engine is already removing it
            log.warning(
                "could not remove container %s (%s); remove it with 'docker rm -f %s'",
                _ident(container),
                _reason(exc),
                _ident(container),
            )

    # -- orphans ---------------------------------------------------------------------------

    def find_jobs(self, labels: Mapping[str, str] | None = None) -> list[JobInfo]:
        """Containers tltpipe created (running or not) that carry all the given labels."""
        filters = {"label": [f"{LABEL}=1"] + [f"{k}={v}" for k, v in (labels or {}).items()]}
        client = self._docker()
        with self._engine():
            found = client.containers.list(all=True, filters=filters, ignore_removed=True)
        return [
            JobInfo(id=c.id, name=c.name, status=c.status, labels=dict(c.labels or {}))
            for c in found
        ]

    def stop_container(self, container_id: str, timeout: int | None = None) -> None:
        """Stop a tltpipe container (timeout: seconds before SIGKILL, default stop_timeout)."""
        container = self._own_container(container_id)
        if container is None:
            return
        try:
            with self._engine():
                container.stop(timeout=self.stop_timeout if timeout is None else timeout)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise TltPipeError(f"cannot stop container {container_id}: {_reason(exc)}") from None

    def remove_job(self, container_id: str) -> None:
        """Remove a tltpipe container, killing it if it still runs. A missing one is fine."""
        container = self._own_container(container_id)
        if container is None:
            return
        try:
            with self._engine():
                container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise TltPipeError(f"cannot remove container {container_id}: {_reason(exc)}") from None

    def wait_job(self, container_id: str, secrets: Iterable[str] = ()) -> JobEnd:
        """Wait for a tltpipe container (e.g. one left by a killed tltpipe) to exit; then
        (exit code, its whole output with secrets redacted, OOM-killed). Does not remove it."""
        container = self._own_container(container_id)
        if container is None:
            raise TltPipeError(f"container {container_id} no longer exists")
        try:
            with self._engine(secrets):
                status = container.wait()
                output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
                container.reload()
        except docker.errors.APIError as exc:
            raise TltPipeError(redact(f"cannot wait for container {container_id}: {_reason(exc)}", secrets)) from None
        splitter = LineSplitter()
        lines = [line.text for line in splitter.feed(output.encode()) if not line.partial]
        lines += [line.text for line in splitter.close() if not line.partial]
        text = "\n".join(redact(line, secrets) for line in lines)
        oom = bool(((container.attrs or {}).get("State") or {}).get("OOMKilled"))
        return JobEnd(int(status.get("StatusCode", -1)), text + ("\n" if text else ""), oom)

    def _own_container(self, container_id: str) -> Any:
        """The container, None when it does not exist; refuses containers tltpipe did not create."""
        client = self._docker()
        try:
            with self._engine():
                container = client.containers.get(container_id)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise TltPipeError(f"cannot inspect container {container_id}: {_reason(exc)}") from None
        if (container.labels or {}).get(LABEL) != "1":
            raise TltPipeError(
                f"container {container_id} was not created by tltpipe (no {LABEL}=1 label); not touching it"
            )
        return container


# -- pure helpers ------------------------------------------------------------------------------


@contextmanager
def _stopped_when(cancel: threading.Event | None, stop: Callable[[], None]) -> Iterator[None]:
    """While the body runs, a watcher thread calls stop once cancel is set (the body, blocked reading the
    container's output, then sees the output end)."""
    if cancel is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(0.2):
                if not finished.is_set():
                    stop()
                return

    watcher = threading.Thread(target=watch, name="tltpipe-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()


def device_requests(gpus: str | int | Sequence[int]) -> list[docker.types.DeviceRequest]:
    """The GPU request for a gpus setting: "all", a count, GPU indices, or 0/"none"/[] for none."""
    if isinstance(gpus, str):
        if gpus == "all":
            return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        if gpus == "none":
            return []
    elif isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= 0:
        if gpus == 0:
            return []
        return [docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    elif isinstance(gpus, Sequence) and all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in gpus
    ):
        if not gpus:
            return []
        return [docker.types.DeviceRequest(device_ids=[str(i) for i in gpus], capabilities=[["gpu"]])]
    raise ValueError(
        f"gpus must be 'all', 'none', 0, a positive count or a list of GPU indices, not {gpus!r}"
    )


def container_name(labels: Mapping[str, str]) -> str:
    """tltpipe-<run>-<stage>-<8 hex>, from the labels present, in docker's allowed characters."""
    parts = ["tltpipe"]
    for key in (LABEL_RUN, LABEL_STAGE):
        part = _NAME_PART.sub("-", labels.get(key, "")).strip("-_.")[:40].strip("-_.")
        if part:
            parts.append(part)
    parts.append(uuid.uuid4().hex[:8])
    return "-".join(parts)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM (main thread only); they are delivered on exit."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _registry(image: str) -> str | None:
    """The registry host of an image reference, None for Docker Hub short names."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _ident(container: Any) -> str:
    return str(getattr(container, "name", None) or getattr(container, "id", "?"))


def _reason(exc: BaseException) -> str:
    """A short, one-line reason: the OS error behind a failed connection, or the engine's words."""
    os_error = _find_os_error(exc)
    if os_error is not None:
        return os_error.strerror or str(os_error)
    if isinstance(exc, docker.errors.APIError):
        return _one_line(str(exc.explanation or exc))
    return _one_line(str(exc) or type(exc).__name__)


def _runtime_reason(reason: str) -> str:
    """The useful tail of an OCI runtime error ("... error during container init: X: unknown")."""
    for marker in ("error during container init: ", "unable to start container process: "):
        if marker in reason:
            reason = reason.rsplit(marker, 1)[1]
            break
    return reason.removesuffix(": unknown")


def _find_os_error(exc: BaseException) -> OSError | None:
    """The first OSError with an errno in an exception, its causes and its arguments."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None and current.strerror:
            return current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return None


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
