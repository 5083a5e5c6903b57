"""The conformance results of this session: (network, toolkit, variant) -> "pass" | "FAIL"."""

from __future__ import annotations

RESULTS: dict[tuple[str, str, str], str] = {}
