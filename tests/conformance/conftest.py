"""Prints the conformance matrix (network x toolkit x variant: pass/FAIL) after the session."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    from tests.conformance.matrix import RESULTS as MATRIX

    if not MATRIX:
        return
    rows = sorted({(n, t) for n, t, _ in MATRIX})
    variants = list(dict.fromkeys(["fp32", "int8", "kmeans", "resume", "retrain",
                                   *(v for _, _, v in MATRIX if not v.startswith("examples/"))]))
    write = terminalreporter.write_line
    terminalreporter.section("conformance with NVIDIA's definitions")
    width = max(9, *(len(v) + 1 for v in variants))
    write(f"{'network':<14}{'toolkit':<9}" + "".join(f"{v:<{width}}" for v in variants))
    for network, toolkit in rows:
        cells = [MATRIX.get((network, toolkit, v), "-") for v in variants]
        write(f"{network:<14}{toolkit:<9}" + "".join(f"{c:<{width}}" for c in cells))
    for (network, toolkit, variant), result in sorted(MATRIX.items()):
        if variant.startswith("examples/"):
            write(f"{variant} ({network}, {toolkit}): {result}")
