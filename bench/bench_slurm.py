"""tltpipe's orchestration overhead per stage on Slurm, side by side with a bare `sbatch --wait`.

    python bench/bench_slurm.py            # 5 rounds; needs a Slurm cluster (scripts/slurm-cluster.sh)
                                           # and the emulator images (make emulator)

Converts the bundled sample once with `runner.kind: slurm`, then, round after round, times
`tltpipe stage tfrecords --force` (plan, submit, stream the log, collect, write the manifest) and
`sbatch --wait --wrap '<the same docker run command>'`. Goal: at most 1.2x.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import tlt_pipe
from tlt_pipe.datasets.sample import sample_crpd
from tlt_pipe.planner import workspace_for
from tlt_pipe.runners.slurm import container_argv
from tlt_pipe.task import Task

from timing import timed  # bench/timing.py
from timing import tltpipe as find_tltpipe

GOAL = 1.2
CONFIG = """\
network: ssd
toolkit: "5.0"
name: bench
dataset: {format: crpd, path: crpd, classes: {lpd: lpd}, val_split: 25}
model: {pretrained: w.hdf5}
runner:
  kind: slurm
  gpus: 0
  image: tltpipe-emulator:tf-5.0
  deploy_image: tltpipe-emulator:deploy-5.0
  slurm: {gpus: 0, time: "00:10:00", poll_s: 0.5}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tltpipe = find_tltpipe()
    shutil.which("sbatch") or sys.exit("no sbatch here: start a cluster with scripts/slurm-cluster.sh")
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        root = Path(tmp)
        sample_crpd(root / "crpd", 24, 0)
        (root / "w.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
        (root / "bench.yaml").write_text(CONFIG, encoding="utf-8")
        stage = [tltpipe, "stage", "tfrecords", "--config", "bench.yaml", "--run-dir", "run", "--force", "--plain"]
        subprocess.run([tltpipe, "run", "ssd", "--config", "bench.yaml", "--run-dir", "run", "--to", "tfrecords"],
                       cwd=root, check=True, stdout=subprocess.DEVNULL)
        config = tlt_pipe.load_config(root / "bench.yaml")
        run_dir = (root / "run").resolve()
        [step] = tlt_pipe.plan(config, run_dir=run_dir, stages="tfrecords", force=True, key="")
        task = Task(image=step.plan.image or "", argv=tuple(step.plan.argv),
                    mounts=workspace_for(config, run_dir).mounts())
        bare = container_argv(task, container="docker", shm_size="16G", name="tltpipe-bench-bare")
        sbatch = ["sbatch", "--wait", "--output", "/dev/null", "--time", "00:10:00", "--wrap", shlex.join(bare)]
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(timed(stage, root))
            theirs.append(timed(sbatch, root))
    o, t = statistics.median(ours), statistics.median(theirs)
    met = "met" if o / t <= GOAL else "NOT met"
    print(f"{args.rounds} alternating rounds, median wall time of one stage (tfrecords) as a Slurm job")
    print(f"  tltpipe stage tfrecords --force     {o:6.2f} s   {o / t:4.2f}x   goal <= {GOAL}x: {met}")
    print(f"  sbatch --wait (same docker run)     {t:6.2f} s")


if __name__ == "__main__":
    main()
