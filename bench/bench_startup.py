"""Cold start of the command line, measured side by side with NVIDIA's `tao` launcher.

    python bench/bench_startup.py              # 15 alternating rounds
    python bench/bench_startup.py --rounds 30

Times `tltpipe --help`, `tltpipe run ssd --config lpd.yaml --dry-run` (on the bundled sample) and
`tao --help` of the nvidia-tao launcher (6.26.3, installed once into its own virtual environment
under ~/.cache/tltpipe/bench, since it pins its own docker and requests). The commands run in
turn, round after round, so a busy machine slows all of them alike; the medians and their ratios
are printed with the goals: at most 150 ms and at most 0.5x `tao --help`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import timed, tltpipe  # bench/timing.py

REPO = Path(__file__).resolve().parents[1]
VENV = Path.home() / ".cache" / "tltpipe" / "bench" / "nvidia-tao-6.26.3"
GOAL_MS = 150
GOAL_RATIO = 0.5
# The libraries a dry run cannot do without, imported and nothing else: the floor under its cold start.
LIBRARIES = "import click, yaml, pydantic.main, jinja2, google.protobuf.text_format, rich.console"


def tao_launcher() -> Path:
    tao = VENV / "bin" / "tao"
    if not tao.exists():
        print(f"installing nvidia-tao 6.26.3 into {VENV} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "nvidia-tao==6.26.3"], check=True)
    return tao


def sample_config(folder: Path) -> Path:
    subprocess.run([sys.executable, str(REPO / "examples" / "make_sample.py"), "--out", str(folder / "data")],
                   check=True, capture_output=True)
    config = folder / "lpd.yaml"
    shutil.copy(REPO / "examples" / "lpd.yaml", config)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = sample_config(folder)
        commands = {
            "tao --help (nvidia-tao 6.26.3)": [str(tao_launcher()), "--help"],
            "tltpipe --help": [tltpipe(), "--help"],
            "tltpipe run --dry-run": [tltpipe(), "run", "ssd", "--config", str(config), "--dry-run",
                                      "--set", "runner.gpus=0"],
        }
        for argv in commands.values():  # warm the file cache once
            timed(argv, folder)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(timed(argv, folder))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    peer = medians["tao --help (nvidia-tao 6.26.3)"]
    print(f"{args.rounds} alternating rounds, median wall time")
    for name, ms in medians.items():
        line = f"  {name:<32} {ms:7.1f} ms"
        if not name.startswith("tao "):
            ratio = ms / peer
            met = "met" if ms <= GOAL_MS and ratio <= GOAL_RATIO else "NOT met"
            line += f"   {ratio:4.2f}x tao --help   goal <= {GOAL_MS} ms and <= {GOAL_RATIO}x: {met}"
        print(line)
    floors = {"python -c pass (the floor)": "pass",
              "importing what a dry run needs": LIBRARIES}
    for name, code in floors.items():
        ms = statistics.median(timed([sys.executable, "-c", code], REPO) for _ in range(args.rounds)) * 1000
        print(f"  {name:<32} {ms:7.1f} ms")
    print(f"  (a dry run validates the config with pydantic, renders specs with jinja2, checks them with "
          f"protobuf and prints with rich: {LIBRARIES!r})")


if __name__ == "__main__":
    main()
