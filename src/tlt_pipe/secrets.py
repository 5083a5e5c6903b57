"""Secrets come from the environment only and are replaced by *** wherever text leaves tltpipe."""

from __future__ import annotations

import os
from collections.abc import Iterable

KEY_ENV = "TLTPIPE_KEY"
NGC_ENV = "NGC_API_KEY"
MASK = "***"
# Keys tltpipe itself reads from its environment; a task it starts never inherits them.
SECRET_ENVS = frozenset({KEY_ENV, NGC_ENV, "NGC_CLI_API_KEY", "NGC_APP_KEY"})


def task_environment(env: dict[str, str], secrets: Iterable[str]) -> dict[str, str]:
    """tltpipe's environment as a task inherits it: without the keys (SECRET_ENVS) or any value holding a secret."""
    secrets = [s for s in secrets if s]
    return {k: v for k, v in env.items() if k not in SECRET_ENVS and not any(s in v for s in secrets)}


MIN_KEY_LENGTH = 6


def read_key(env: dict[str, str] | None = None) -> str | None:
    """The TAO encryption key from TLTPIPE_KEY, or None when unset or empty.

    A very short key cannot be masked in logs without garbling ordinary words, so it is refused."""
    from tlt_pipe.errors import ConfigError

    value = (env if env is not None else os.environ).get(KEY_ENV, "")
    if value and len(value) < MIN_KEY_LENGTH:
        raise ConfigError(f"{KEY_ENV} is too short ({len(value)} characters): tltpipe masks the key in every log "
                          f"and file, which garbles text for keys under {MIN_KEY_LENGTH} characters; use a longer key")
    return value or None


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def redact_argv(argv: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """The argv with secrets masked, safe to print and to record."""
    secrets = [s for s in secrets if s]
    return [redact(arg, secrets) for arg in argv]


SCRUB_LIMIT = 1 << 20  # files larger than this are models, images, records: not text a key is written into


def _is_text(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def scrub_files(paths: Iterable["os.PathLike[str] | str"], secrets: Iterable[str]) -> list[str]:
    """Replace each secret by *** in the small files below paths (TAO writes the key into
    nvinfer_config.txt, for one). Returns the files changed."""
    from pathlib import Path

    needles = [s.encode() for s in secrets if s]
    changed: list[str] = []
    if not needles:
        return changed
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        for path in files:
            if path.stat().st_size > SCRUB_LIMIT:
                continue
            data = path.read_bytes()
            if not any(n in data for n in needles) or not _is_text(data):
                continue  # models, records and engines are binary: never rewritten
            for needle in needles:
                data = data.replace(needle, MASK.encode())
            tmp = path.with_name(f".{path.name}.scrub")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            changed.append(str(path))
    return changed
