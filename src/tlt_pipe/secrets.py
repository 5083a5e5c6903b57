"""Secrets come from the environment only and are replaced by *** wherever text leaves tltpipe."""

from __future__ import annotations

import os
from collections.abc import Iterable

KEY_ENV = "TLTPIPE_KEY"
NGC_ENV = "NGC_API_KEY"
MASK = "***"


def read_key(env: dict[str, str] | None = None) -> str | None:
    """The TAO encryption key from TLTPIPE_KEY, or None when unset or empty."""
    value = (env if env is not None else os.environ).get(KEY_ENV, "")
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
