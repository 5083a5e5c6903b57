"""Where tltpipe keeps what it can rebuild: NGC downloads and compiled spec templates.

`~/.cache/tltpipe/`, moved by TLTPIPE_CACHE (the folder itself) or XDG_CACHE_HOME (its parent)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    if os.environ.get("TLTPIPE_CACHE"):
        return Path(os.environ["TLTPIPE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "tltpipe"
