"""The conformance matrix: every network on every toolkit that ships it, in each variant, planned by tltpipe.

A case is planned the way `tltpipe run` plans it (the stage functions on a run context), with the
upstream artifacts either still pending (a dry run) or recorded as a finished run would record them
(the retrain variant), so every argv and every spec tltpipe would hand to TAO is produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tlt_pipe.config import parse_config
from tlt_pipe.manifest import Manifest, StageRecord
from tlt_pipe.networks import NETWORKS
from tlt_pipe.planner import Selection, build_context, stages_for
from tlt_pipe.stages import Context, StagePlan
from tlt_pipe.stages import train as train_stage
from tlt_pipe.toolkits import TOOLKITS

KEY = "k3y-conformance"
VARIANTS = ("fp32", "int8", "kmeans", "resume", "retrain")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_EXTRA = {
    "fp32": "",
    "int8": "engine: {data_type: int8, workspace_mb: 4096, opt_batch_size: 4}\n",
    "kmeans": "anchors: {mode: tao}\n",
    "resume": "",
    "retrain": "engine: {workspace_mb: 3000}\n",
}


def applies(network: str, toolkit: str, variant: str) -> bool:
    if toolkit not in NETWORKS[network].toolkits or NETWORKS[network].framework != "tao":  # TAO's tasks only
        return False
    # TLT 2.0 has no kmeans task (tltpipe refuses anchors.mode tao there, tested in tests/unit).
    return variant != "kmeans" or bool(NETWORKS[network].anchor_groups) and toolkit != "2.0"


CASES = [(n, t, v) for n in NETWORKS for t in TOOLKITS for v in VARIANTS if applies(n, t, v)]


@dataclass(frozen=True)
class Planned:
    stage: str
    ctx: Context
    plan: StagePlan
    specs: dict[str, str]  # run-relative path -> text, including a resume spec written before training


def _config_text(network: str, toolkit: str, variant: str) -> str:
    return (f"network: {network}\ntoolkit: '{toolkit}'\nname: c\n"
            "dataset: {path: data, classes: {plate: lpd, car: vehicle}}\n"
            "model: {pretrained: w.hdf5}\ntrain: {epochs: 4, batch_size: 4}\n"
            "runner: {gpus: 0}\n" + _EXTRA[variant])


def _finished(config, toolkit, network) -> Manifest:
    """A manifest as a finished train, prune, retrain and export leave it (the retrain variant)."""
    ext = toolkit.checkpoint_ext
    model = config.model
    manifest = Manifest(tltpipe="t", name="c", network=network.name, toolkit=toolkit.version)
    if network.model_passing.final_model_only:
        trained = {"model": f"train/weights/model.{ext}", "epoch": 4}
        retrained = {"model": f"retrain/weights/model.{ext}", "epoch": 4}
    else:
        trained = {"model": f"train/weights/{network.checkpoint_name(model.arch, model.nlayers, 4, ext)}", "epoch": 4}
        retrained = {"model": f"retrain/weights/{network.checkpoint_name(model.arch, model.nlayers, 3, ext)}",
                     "epoch": 3}
    records = {
        "prepare": {"root": "data/kitti", "classes": ["lpd", "vehicle"]},
        "anchors": {"anchors": "anchors/anchors.json"},
        "train": trained,
        "prune": {"model": f"prune/{network.checkpoint_prefix}_pruned.{ext}"},
        "retrain": retrained,
        "calibration_tensorfile": {"tensorfile": "calibration/calibration.tensorfile"},
        "export": {"model": f"export/{network.checkpoint_prefix}.{toolkit.export_ext}", "cal_cache": "export/cal.bin"},
    }
    for name, artifacts in records.items():
        manifest.stages[name] = StageRecord(status="succeeded", artifacts=artifacts)
    return manifest


def _checkpoints(ctx: Context, name: str) -> None:
    """Two complete checkpoints of an interrupted training run (the resume variant)."""
    model = ctx.config.model
    for epoch in (1, 2):
        if ctx.network.model_passing.final_model_only:
            rel = f"{name}/model.epoch-{epoch}.ckzip"
        else:
            rel = f"{name}/weights/{ctx.network.checkpoint_name(model.arch, model.nlayers, epoch, ctx.toolkit.checkpoint_ext)}"
        path = ctx.workspace.host(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)


def plan_case(tmp: Path, network: str, toolkit: str, variant: str) -> list[Planned]:
    """Every container stage of one case as tltpipe plans it."""
    (tmp / "data").mkdir(exist_ok=True)
    (tmp / "w.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n")
    config = parse_config(_config_text(network, toolkit, variant), source="c.yaml", base_dir=tmp)
    return plan_config(config, tmp / "run", variant)


def plan_config(config, run_dir: Path, variant: str = "fp32") -> list[Planned]:
    toolkit = TOOLKITS[config.toolkit]
    network = NETWORKS[config.network]
    manifest, selection = None, Selection()
    if variant == "retrain":
        manifest = _finished(config, toolkit, network)
    if variant == "resume":
        manifest = Manifest(tltpipe="t", name="c", network=network.name, toolkit=toolkit.version)
        manifest.stages["train"] = StageRecord(status="interrupted")
        selection = Selection(resume_epoch=2)
    if variant == "resume":
        _checkpoints(build_context(config, run_dir, manifest, KEY, selection), "train")
    planned = []
    for stage in stages_for(config):
        if variant == "resume" and stage.name != "train":
            continue
        ctx = build_context(config, run_dir, manifest, KEY, selection, stage)  # reads only what it declares
        plan = stage.plan(ctx)
        if plan.image is None:  # host stages (prepare, native anchors)
            continue
        specs = dict(plan.specs)
        if plan.resumed_from is not None:
            train_stage.before_training(ctx, plan)
            resume_spec = train_stage.resume_spec_path(stage.name)
            if ctx.workspace.host(resume_spec).is_file():
                specs[resume_spec] = ctx.workspace.host(resume_spec).read_text(encoding="utf-8")
        planned.append(Planned(stage=stage.name, ctx=ctx, plan=plan, specs=specs))
    return planned


def example_configs() -> list[Path]:
    """The TAO examples (the pytorch-ssd one runs no TAO task)."""
    return [p for p in sorted(EXAMPLES.glob("*.yaml"))
            if NETWORKS[yaml.safe_load(p.read_text(encoding="utf-8"))["network"]].framework == "tao"]
