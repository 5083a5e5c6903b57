"""`tltpipe report runs/lpd`: runs/lpd/report/ with PNG charts, metrics.json and one
self-contained report.html (the charts inlined as base64), from manifest.json and the training CSVs.

Reading the run and drawing are separate: ``report_data`` gathers numbers, ``render_html`` is pure,
``write_report`` is the only function that writes files.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tlt_pipe import charts, gallery, summary
from tlt_pipe.errors import ConfigError
from tlt_pipe.manifest import Manifest, load_manifest, training_logs, write_atomic
from tlt_pipe.parsers import EpochRow, parse_training_csv
from tlt_pipe.summary import ap_table, json_safe, stage_rows

TRAINING_STAGES = ("train", "retrain")
CHARTS = ("loss", "lr", "map", "ap_per_class", "pruning")
INFERENCE_STAGES = {"inference": "the retrained model", "inference_engine": "the TensorRT engine"}
GRID_IMAGES = 12  # test images per grid


def training_csv(run_dir: Path, manifest: Manifest, stage: str) -> Path | None:
    """The stage's training log in this run directory (manifest.training_logs)."""
    return next((path for path in training_logs(run_dir, stage, manifest.stages.get(stage)) if path.is_file()), None)


def training_history(run_dir: Path, manifest: Manifest, stage: str) -> list[EpochRow]:
    path = training_csv(run_dir, manifest, stage)
    if path is None:
        return []
    try:
        return parse_training_csv(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


def report_data(run_dir: Path, manifest: Manifest) -> dict[str, Any]:
    """Everything the report shows, JSON-able (this is metrics.json)."""
    histories = {stage: [asdict(row) for row in training_history(run_dir, manifest, stage)]
                 for stage in TRAINING_STAGES}
    stages, rows = ap_table(manifest)
    return {
        "name": manifest.name, "network": manifest.network, "toolkit": manifest.toolkit,
        "stages": {name: {"status": r.status, "duration_s": r.duration_s, "metrics": r.metrics}
                   for name, r in manifest.stages.items()},
        "history": {stage: rows_ for stage, rows_ in histories.items() if rows_},
        "ap": {stage: {cls: values[i] for cls, values in rows} for i, stage in enumerate(stages)},
        "pruning": pruning_points(manifest),
    }


def pruning_points(manifest: Manifest) -> list[dict[str, Any]]:
    """(model size ratio, mAP): the unpruned model at 1.0, then the pruned and retrained one."""
    points = []
    before = _finite(manifest.metric("evaluate", "mAP"))
    if before is not None:
        points.append({"model": "trained", "ratio": 1.0, "mAP": before})
    ratio = _finite(manifest.metric("prune", "pruning_ratio"))
    after = _finite(manifest.metric("evaluate_retrain", "mAP"))
    if ratio is not None and after is not None:
        points.append({"model": "pruned + retrained", "ratio": ratio, "mAP": after})
    return points


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def draw_charts(data: dict[str, Any]) -> dict[str, bytes]:
    """chart name -> PNG bytes."""
    history = data["history"]

    def series(field: str) -> dict[str, list[tuple[float, float | None]]]:
        return {stage: [(row["epoch"], row[field]) for row in rows] for stage, rows in history.items()}

    classes = sorted({c for per_class in data["ap"].values() for c in per_class if c != "mAP"})
    images = {
        "loss": charts.line_chart("Training loss per epoch", series("loss"), ylabel="loss"),
        "lr": charts.line_chart("Learning rate per epoch", series("lr"), ylabel="learning rate"),
        "map": charts.line_chart("Validation mAP per epoch", series("map"), ylabel="mAP"),
        "ap_per_class": charts.bar_chart("Average precision per class", classes,
                                         {stage: [ap.get(c) for c in classes] for stage, ap in data["ap"].items()},
                                         ylabel="AP"),
        "pruning": charts.point_chart("Pruning ratio vs mAP",
                                      [(p["model"], p["ratio"], p["mAP"]) for p in data["pruning"]],
                                      xlabel="model size (pruned / original)", ylabel="mAP"),
    }
    return {name: charts.png(image) for name, image in images.items()}


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:900px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right}img{max-width:100%;border:1px solid #eee}code{font-size:90%}"""

_CAPTIONS = {"loss": "Training loss", "lr": "Learning rate", "map": "Validation mAP",
             "ap_per_class": "Average precision per class", "pruning": "Pruning ratio vs mAP"}


def render_html(manifest: Manifest, data: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """One self-contained page: no file or network reference, the charts inlined."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>tltpipe report: {e(manifest.name)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(manifest.name)}: {e(manifest.network)} on TAO {e(manifest.toolkit)}</h1>",
             "<section id='stages'><h2>Stages</h2><table><tr><th>stage</th><th>status</th><th>time</th>"
             "<th>result</th><th>output</th></tr>"]
    for row in stage_rows(manifest):
        took = f"{row.duration_s:.1f}s" if row.duration_s is not None else ""
        parts.append(f"<tr><td>{e(row.stage)}</td><td>{e(row.status)}</td><td class='num'>{took}</td>"
                     f"<td>{e(row.key_metric)}</td><td><code>{e(row.output)}</code></td></tr>")
    parts.append("</table></section>")
    parts.append("<section id='training'><h2>Training</h2>")
    for name in ("loss", "lr", "map"):
        parts.append(_figure(name, pngs))
    parts.append("</section><section id='ap'><h2>Average precision per class</h2>")
    stages, rows = ap_table(manifest)
    if stages:
        parts.append("<table><tr><th>class</th>" + "".join(f"<th>{e(s)}</th>" for s in stages) + "</tr>")
        for cls, values in rows:
            cells = "".join(f"<td class='num'>{'' if v is None else f'{v:.4f}'}</td>" for v in values)
            parts.append(f"<tr><td>{e(cls)}</td>{cells}</tr>")
        parts.append("</table>")
    parts.append(_figure("ap_per_class", pngs))
    parts.append("</section><section id='pruning'><h2>Pruning</h2>")
    for point in data["pruning"]:
        parts.append(f"<p>{e(point['model'])}: size ratio {point['ratio']:.4f}, mAP {point['mAP']:.4f}</p>")
    parts.append(_figure("pruning", pngs))
    grids = [stage for stage in INFERENCE_STAGES if stage in pngs]
    if grids:
        parts.append("</section><section id='detections'><h2>Detections</h2>")
        engine = summary.engine_accuracy(manifest)
        if engine:
            parts.append(f"<p>{e(engine.line)}</p>")
        parts.extend(_figure(stage, pngs) for stage in grids)
    parts.append("</section><section id='metrics'><h2>Metrics</h2><pre>"
                 f"{e(json.dumps(data['stages'], indent=1, default=str))}</pre></section></body></html>\n")
    return "".join(parts)


def inference_grids(run_dir: Path, manifest: Manifest, count: int = GRID_IMAGES) -> dict[str, bytes]:
    """stage -> PNG of its first `count` test images with the detections drawn, for each inference stage that ran."""
    pngs = {}
    for stage, what in INFERENCE_STAGES.items():
        record = manifest.stages.get(stage)
        if record is None or record.status != "succeeded" or not isinstance(record.artifacts.get("results"), str):
            continue
        images = Path(str(record.artifacts.get("images", "")))
        picked = gallery.samples(run_dir / record.artifacts["results"], images if images.is_absolute() else run_dir / images,
                                 count)
        shown = []
        for path, found in picked:
            try:
                with Image.open(path) as image:
                    image.load()
                    shown.append((path.name, image.copy(), found))
            except (OSError, ValueError):
                continue
        m = record.metrics
        precision = f" ({m['precision'].upper()})" if isinstance(m.get("precision"), str) else ""
        threshold = f", threshold {m['threshold']}" if isinstance(m.get("threshold"), (int, float)) else ""
        pngs[stage] = charts.png(gallery.grid(shown, title=f"{stage}: {what}{precision}{threshold}"))
    return pngs


def _figure(name: str, pngs: dict[str, bytes]) -> str:
    encoded = base64.b64encode(pngs[name]).decode("ascii")
    caption = _CAPTIONS.get(name) or f"Detections of {INFERENCE_STAGES[name]} on test images"
    return (f"<figure id='{name}'><img alt='{caption}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{caption}</figcaption></figure>")


@dataclass(frozen=True)
class Report:
    folder: Path
    html: Path
    metrics: Path
    charts: dict[str, Path]


def write_report(run_dir: Path) -> Report:
    manifest = load_manifest(run_dir)
    if manifest is None:
        raise ConfigError(f"{run_dir}: no manifest.json here; is it a tltpipe run directory?")
    data = json_safe(report_data(run_dir, manifest))
    pngs = {**draw_charts(data), **inference_grids(run_dir, manifest)}
    folder = run_dir / "report"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{folder}: is a file; the report is a folder there (move the file away)") from None
    paths = {name: folder / f"{name}.png" for name in pngs}
    metrics, page = folder / "metrics.json", folder / "report.html"
    try:
        for name, png in pngs.items():
            write_atomic(paths[name], png)
        write_atomic(metrics, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")
        write_atomic(page, render_html(manifest, data, pngs))
    except OSError as exc:
        raise ConfigError(f"{exc.filename2 or exc.filename or folder}: cannot write the report: {exc.strerror or exc}") from None
    return Report(folder, page, metrics, paths)
