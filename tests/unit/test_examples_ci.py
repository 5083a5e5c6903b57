"""The CI example stays in step with the CLI: valid YAML, real stage names, jobs chained by artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tlt_pipe.planner import STAGE_NAMES

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "github-actions.yml"


def test_workflow_runs_real_stages_as_chained_jobs():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    scripts = "\n".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    stages = re.findall(r"tltpipe stage \"?\$?(\w+)", scripts)
    loops = re.findall(r"for stage in ([\w ]+);", scripts)
    named = [s for s in stages if s != "stage"] + [s for loop in loops for s in loop.split()]
    assert set(named) <= set(STAGE_NAMES) and {"train", "retrain", "export", "engine"} <= set(named)
    for name, job in jobs.items():
        assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
        if "needs" in job:
            downloads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
            assert downloads, f"job {name} does not receive the run directory"
    assert all("--json" in line for line in scripts.splitlines() if "tltpipe stage" in line)
