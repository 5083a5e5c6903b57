"""Pretrained models from NGC through ngcsdk: `model.pretrained: ngc:ORG/[TEAM/]NAME:VERSION[/FILE]`.

A version is downloaded once into the cache, `~/.cache/tltpipe/ngc/ORG/TEAM/NAME/VERSION/` (TLTPIPE_CACHE or
XDG_CACHE_HOME move it), and every later run uses it without the network. A download goes to a `.partial`
folder beside it; each file is checked against the size and sha256 NGC lists (ngcsdk checks neither) before it
is moved into place, and the folder is complete once `.tltpipe-ngc.json` (the files, sizes and sha256) is
written, last. An interrupted download resumes file by file: files already fetched and checked are kept.

NGC_API_KEY (or NGC_CLI_API_KEY) from the environment is used when set; public models need none. ngcsdk is
pointed at a private home folder, so it neither reads nor writes your ~/.ngc; NGC_CLI_API_URL and
NGC_CLI_AUTH_URL select the NGC service, as for the ngc command.

    parse_ref(text) -> NgcRef      cached(ref) -> Cached | None      fetch(ref, on_line) -> Cached
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlt_pipe.cache import cache_home
from tlt_pipe.errors import ConfigError

PREFIX = "ngc:"
MARKER = ".tltpipe-ngc.json"
WEIGHTS = (".hdf5", ".h5", ".tlt", ".pth", ".ckpt", ".onnx")  # what a trainer starts from
_REF = re.compile(r"^(?P<org>[\w.-]+)/(?:(?P<team>[\w.-]+)/)?(?P<name>[\w.-]+):(?P<version>[\w.+-]+)(?:/(?P<file>.+))?$")

OnProgress = Callable[[str], None]


class NgcError(ConfigError):
    """An NGC model could not be had: one line saying what and what to do (exit code 2)."""


@dataclass(frozen=True)
class NgcRef:
    org: str
    team: str | None
    name: str
    version: str
    file: str | None = None  # which file of the version to start from; None: its one weights file

    @property
    def target(self) -> str:
        """As ngcsdk names it: org/[team/]name:version."""
        return f"{self.org}/{self.team + '/' if self.team else ''}{self.name}:{self.version}"

    @property
    def model(self) -> str:
        return self.target.rsplit(":", 1)[0]

    def __str__(self) -> str:
        return PREFIX + self.target + (f"/{self.file}" if self.file else "")


@dataclass(frozen=True)
class Cached:
    """A complete version in the cache, and the file a run starts from."""

    ref: NgcRef
    folder: Path
    files: tuple[dict[str, Any], ...]  # {path, size, sha256}
    weights: Path

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of it."""
        return {"ngc": str(self.ref), "model": self.ref.model, "version": self.ref.version,
                "file": str(self.weights.relative_to(self.folder)), "folder": str(self.folder),
                "files": [dict(f) for f in self.files]}


def is_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def parse_ref(text: str) -> NgcRef:
    """ngc:ORG/[TEAM/]NAME:VERSION[/FILE] (ValueError with the expected form otherwise)."""
    match = _REF.match(text[len(PREFIX):] if text.startswith(PREFIX) else text)
    if not match:
        raise ValueError(f"{text!r} is not an NGC model: expected ngc:ORG/[TEAM/]NAME:VERSION, "
                         "e.g. ngc:nvidia/tao/pretrained_object_detection:resnet18")
    return NgcRef(match["org"], match["team"], match["name"], match["version"], match["file"])


def cache_root() -> Path:
    return cache_home() / "ngc"


def folder_of(ref: NgcRef) -> Path:
    return cache_root() / ref.org / (ref.team or "_") / ref.name / ref.version


PLACEHOLDER = "<downloaded when the run starts>"  # the file of a version not in the cache yet, in a plan


def is_placeholder(path: Path) -> bool:
    return path.name == PLACEHOLDER


# --- the cache (no network) -----------------------------------------------------------------

def cached(ref: NgcRef) -> Cached | None:
    """The version from the cache when it is complete (every listed file there with its size), else None."""
    folder = folder_of(ref)
    try:
        listed = json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"]
        files = tuple({"path": str(f["path"]), "size": int(f["size"]), "sha256": str(f["sha256"])} for f in listed)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all((folder / f["path"]).is_file() and (folder / f["path"]).stat().st_size == f["size"] for f in files):
        return None
    return Cached(ref, folder, files, folder / _weights_file(ref, [f["path"] for f in files]))


def _weights_file(ref: NgcRef, paths: list[str]) -> str:
    if ref.file:
        if ref.file not in paths:
            raise NgcError(f"{ref}: version {ref.version} has no file {ref.file}; its files: {', '.join(sorted(paths))}")
        return ref.file
    weights = [p for p in paths if p.lower().endswith(WEIGHTS)]
    if len(weights) == 1:
        return weights[0]
    listed = ", ".join(sorted(paths)) or "none"
    raise NgcError(f"{ref}: {'no' if not weights else 'more than one'} weights file in version {ref.version} "
                   f"(its files: {listed}); name the one to start from: {ref}/FILE")


# --- downloading (ngcsdk) -------------------------------------------------------------------

def fetch(ref: NgcRef, on_line: OnProgress | None = None) -> Cached:
    """The version from the cache, downloaded first when it is not there (NgcError when it cannot be had).
    on_line hears what happens, with a progress bar line at every tenth of each file."""
    found = cached(ref)
    if found is not None:
        return found
    client, errors = _client(ref)
    listed = _listing(client, errors, ref)
    _weights_file(ref, [f["path"] for f in listed])  # a wrong FILE fails before anything is downloaded
    folder = folder_of(ref)
    partial = folder.parent / f".partial-{ref.version}"
    partial.mkdir(parents=True, exist_ok=True)
    missing = [f for f in listed if not _intact(partial / f["path"], f)]
    total = sum(f["size"] for f in missing)
    if on_line:
        size = f"{total / 1e6:.1f} MB" if total else "nothing left"
        on_line(f"downloading {ref} from NGC into {folder} ({len(missing)} of {len(listed)} files, {size})")
    for item in missing:
        _download_one(client, errors, ref, item, partial, on_line)
    folder.mkdir(parents=True, exist_ok=True)
    for item in listed:
        target = folder / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial / item["path"], target)
    tmp = folder / f"{MARKER}.tmp"
    tmp.write_text(json.dumps({"ngc": str(ref), "files": listed}, indent=2), encoding="utf-8")
    os.replace(tmp, folder / MARKER)
    shutil.rmtree(partial, ignore_errors=True)
    found = cached(ref)
    if found is None:  # pragma: no cover - just written
        raise NgcError(f"{ref}: the cache folder {folder} could not be completed")
    return found


def _intact(path: Path, item: dict[str, Any]) -> bool:
    return path.is_file() and path.stat().st_size == item["size"] and _sha256(path) == item["sha256"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key() -> str | None:
    return os.environ.get("NGC_API_KEY") or os.environ.get("NGC_CLI_API_KEY") or None


@contextmanager
def _environment() -> Iterator[None]:
    """ngcsdk reads its settings when first imported: a private home (not ~/.ngc) and a guest token of its own,
    without an org or team from the environment (guest access refuses them; the model names its own)."""
    home = cache_root() / ".ngc-home"
    home.mkdir(parents=True, exist_ok=True)
    forced = {"NGC_CLI_HOME": str(home), "NGC_CLI_GUEST_TOKEN": os.environ.get("NGC_CLI_GUEST_TOKEN") or str(uuid.uuid4())}
    dropped = ("NGC_CLI_ORG", "NGC_CONTEXT_ORG", "NGC_CLI_TEAM", "NGC_CLI_API_KEY", "NGC_API_KEY", "NGC_APP_KEY")
    saved = {k: os.environ.get(k) for k in (*forced, *dropped)}
    os.environ.update(forced)
    for name in dropped:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _client(ref: NgcRef) -> tuple[Any, Any]:
    """A configured ngcsdk Client (with NGC_API_KEY in the model's org and team, else as a guest) and ngcbase.errors."""
    key = _key()
    try:
        with _environment():
            from ngcbase import errors  # noqa: PLC0415 - ngcsdk is optional and slow to import
            from ngcsdk import Client  # noqa: PLC0415
    except ImportError:
        raise NgcError("model.pretrained names an NGC model, which needs ngcsdk: pip install 'tltpipe[ngc]'") from None
    client = Client()
    try:
        if key:
            client.configure(api_key=key, org_name=ref.org, team_name=ref.team)
        else:
            client.configure()
    except (ValueError, errors.NgcException) as exc:
        raise NgcError(f"NGC did not accept NGC_API_KEY: {_said(exc, key)}") from None
    return client, errors


def _said(exc: BaseException, key: str | None = None) -> str:
    text = " ".join(str(exc).split())
    if key:
        text = text.replace(key, "***")
    return text[:300]


def _failure(errors: Any, exc: BaseException, ref: NgcRef, what: str) -> NgcError:
    """One line for what ngcsdk raised."""
    if isinstance(exc, (errors.AuthenticationException, errors.AccessDeniedException)):
        code = 401 if isinstance(exc, errors.AuthenticationException) else 403
        hint = "set NGC_API_KEY to a key of an NGC org that may read it" if not _key() else \
            "NGC_API_KEY has no access to it"
        return NgcError(f"{ref}: NGC refused access ({code}) while {what}: {hint}")
    if isinstance(exc, errors.NgcAPIError):
        return NgcError(f"{ref}: NGC answered an error while {what}: {_said(exc, _key())}")
    return NgcError(f"{ref}: cannot reach NGC while {what} ({_said(exc, _key())}) and the model is not in the cache "
                    f"{folder_of(ref)}; connect once to download it")


def _listing(client: Any, errors: Any, ref: NgcRef) -> list[dict[str, Any]]:
    """[{path, size, sha256}] of the version, as NGC lists it (the model and version checked first)."""
    models = client.registry.model
    try:
        models.info(ref.target)
    except errors.ResourceNotFoundException:
        raise _unknown(models, errors, ref) from None
    except (errors.NgcException, OSError) as exc:
        raise _failure(errors, exc, ref, "looking the model up") from None
    try:
        listed = [{"path": str(f.path), "size": int(f.sizeInBytes),
                   "sha256": base64.b64decode(f.sha256_base64).hex() if getattr(f, "sha256_base64", None) else ""}
                  for f in models.list_files(ref.target)]
    except (errors.NgcException, OSError) as exc:
        raise _failure(errors, exc, ref, "listing its files") from None
    if not listed:
        raise NgcError(f"{ref}: NGC lists no files for version {ref.version}")
    return listed


def _unknown(models: Any, errors: Any, ref: NgcRef) -> NgcError:
    try:
        versions = [str(v.versionId) for v in models.list(ref.model)]
    except errors.ResourceNotFoundException:
        return NgcError(f"{ref}: NGC has no model {ref.model}")
    except (errors.NgcException, OSError) as exc:
        return _failure(errors, exc, ref, "listing its versions")
    if not versions:
        return NgcError(f"{ref}: NGC has no model {ref.model}")
    return NgcError(f"{ref}: {ref.model} has no version {ref.version}; its versions: {', '.join(versions)}")


def progress_bar(name: str, done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else width
    return f"{name} [{'#' * filled}{'.' * (width - filled)}] {done / 1e6:.1f}/{total / 1e6:.1f} MB"


def _download_one(client: Any, errors: Any, ref: NgcRef, item: dict[str, Any], partial: Path,
                  on_line: OnProgress | None) -> None:
    """One file into the partial folder, checked against NGC's size and sha256."""
    staging = partial / ".ngcsdk"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    thread_errors: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: thread_errors.append(args.exc_value)  # ngcsdk fails in worker threads

    shown = [-1]  # the last tenth reported

    def progress(done: int, failed: int, total: int, *_: int) -> None:
        tenth = 10 * done // total if total else 10
        if on_line and tenth > shown[0]:
            shown[0] = tenth
            on_line(progress_bar(item["path"], done, total))

    download = client.registry.model.download_version
    options: dict[str, Any] = {"file_patterns": [item["path"]], "progress_callback_func": progress}
    if "agree_license" in inspect.signature(download).parameters:  # guest downloads check the license
        options["agree_license"] = os.environ.get("TLTPIPE_NGC_AGREE_LICENSE") == "1"
    try:
        result = download(ref.target, destination=str(staging), **options)
    except RuntimeError as exc:
        if "licen" in str(exc).lower():
            raise NgcError(f"{ref}: NGC asks you to accept the model's license first; read it on NGC, then set "
                           "TLTPIPE_NGC_AGREE_LICENSE=1") from None
        raise _failure(errors, exc, ref, f"downloading {item['path']}") from None
    except (errors.NgcException, OSError) as exc:
        raise _failure(errors, exc, ref, f"downloading {item['path']}") from None
    finally:
        threading.excepthook = hook
    if thread_errors:
        raise _failure(errors, thread_errors[0], ref, f"downloading {item['path']}")
    got = next((p for p in staging.rglob("*") if p.is_file() and p.as_posix().endswith("/" + item["path"])), None)
    status = str(getattr(result, "status", "")) if result is not None else ""
    if status != "Completed" or got is None:
        shutil.rmtree(staging, ignore_errors=True)
        raise NgcError(f"{ref}: the download of {item['path']} did not complete (ngcsdk: {status or 'no result'}); "
                       "run again to resume")
    if got.stat().st_size != item["size"] or (item["sha256"] and _sha256(got) != item["sha256"]):
        shutil.rmtree(staging, ignore_errors=True)
        raise NgcError(f"{ref}: the download of {item['path']} is corrupted (its size or sha256 is not the one NGC "
                       "lists); it was deleted; run again to download it anew")
    target = partial / item["path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(got, target)
    shutil.rmtree(staging, ignore_errors=True)
