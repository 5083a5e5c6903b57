"""How long tltpipe takes to say "nothing changed" on a large unchanged dataset.

    python bench/bench_skip.py                  # 50,000 images, 5 rounds
    python bench/bench_skip.py --images 300000  # CCPD's size

Writes a KITTI dataset of N small images under ~/.cache/tltpipe/bench/skip-<N> (once), runs
`tltpipe run ssd --to prepare` to convert it, then times the same command again (every stage up to
date) round after round, side by side with the floor: one `os.scandir` walk with a stat of every
file of the dataset and of the prepared copy, in a fresh interpreter. Goals: the skip decision
(`tlt_pipe.plan` of the stage, timed inside a fresh interpreter after its imports) at most 1 s, the
whole command at most 1.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from PIL import Image
from timing import timed  # bench/timing.py
from timing import tltpipe as find_tltpipe

CACHE = Path.home() / ".cache" / "tltpipe" / "bench"
GOAL_S = 1.5
DECIDE_GOAL_S = 1.0

WALK = """
import os, sys
def walk(path):
    n = 0
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                n += walk(entry.path)
            else:
                entry.stat(); n += 1
    return n
print(sum(walk(p) for p in sys.argv[1:]))
"""

# The skip decision alone, in a fresh interpreter: the library's plan of the up-to-date stage, timed
# after the imports and the config load.
DECIDE = """
import sys, time
import tlt_pipe
config = tlt_pipe.load_config("bench.yaml")
start = time.perf_counter()
[step] = tlt_pipe.plan(config, run_dir="run", stages="prepare")
took = time.perf_counter() - start
assert step.action == "skip", step.reason
print(took)
"""


def dataset(count: int) -> Path:
    root = CACHE / f"skip-{count}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    images, labels = root / "kitti" / "images", root / "kitti" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    sample = root / "sample.jpg"
    Image.new("RGB", (64, 48), (90, 120, 150)).save(sample, quality=80)
    data = sample.read_bytes()
    for i in range(count):
        (images / f"{i:07d}.jpg").write_bytes(data)
        (labels / f"{i:07d}.txt").write_text("lpd 0.00 0 0.00 10.00 10.00 40.00 30.00 0 0 0 0 0 0 0\n")
    (root / "w.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (root / "bench.yaml").write_text(
        "network: ssd\nname: bench\ndataset: {format: kitti, path: kitti, classes: {lpd: lpd}}\n"
        "model: {pretrained: w.hdf5}\nrunner: {gpus: 0}\n", encoding="utf-8")
    done.touch()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = dataset(args.images)
    tltpipe = find_tltpipe()
    run = [tltpipe, "run", "ssd", "--config", "bench.yaml", "--run-dir", "run", "--to", "prepare"]
    print(f"converting {args.images} images once ...", file=sys.stderr)
    subprocess.run(run, cwd=root, check=True, stdout=subprocess.DEVNULL)
    walk = [sys.executable, "-c", WALK, "kitti", "run/data/kitti"]
    skip, floor, decide = [], [], []
    for _ in range(args.rounds):
        skip.append(timed(run, root))
        floor.append(timed(walk, root))
        decide.append(float(subprocess.run([sys.executable, "-c", DECIDE], cwd=root, check=True,
                                           capture_output=True, text=True).stdout))
    s, f, d = statistics.median(skip), statistics.median(floor), statistics.median(decide)
    print(f"{args.images} images, {args.rounds} alternating rounds, median wall time")
    print(f"  tltpipe run --to prepare (up to date)   {s:6.2f} s   goal <= {GOAL_S} s: {_met(s <= GOAL_S)}")
    print(f"  the skip decision (tlt_pipe.plan)       {d:6.2f} s   goal <= {DECIDE_GOAL_S} s: "
          f"{_met(d <= DECIDE_GOAL_S)}")
    print(f"  one scandir+stat walk of both trees     {f:6.2f} s   (tltpipe / walk: {s / f:4.1f}x)")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
