"""tltpipe report on a synthetic run directory: PNGs opened with Pillow, report.html parsed."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from tlt_pipe import charts
from tlt_pipe.cli import main
from tlt_pipe.manifest import Manifest, StageRecord, save_manifest


def training_log(epochs: int, start_loss: float) -> str:
    lines = ["epoch,AP_car,AP_lpd,loss,lr,mAP,validation_loss"]
    for epoch in range(1, epochs + 1):
        validated = epoch % 2 == 0
        ap = f"{0.1 * epoch:.3f},{0.08 * epoch:.3f}" if validated else "nan,nan"
        mean = f"{0.09 * epoch:.3f}" if validated else "nan"
        lines.append(f"{epoch},{ap},{start_loss / epoch:.4f},{1e-3 * epoch:.5f},{mean},{'1.5' if validated else 'nan'}")
    return "\n".join(lines) + "\n"


def make_run(root: Path, *, with_retrain: bool = True) -> Path:
    run = root / "runs" / "lpd"
    (run / "train").mkdir(parents=True)
    csv = run / "train" / "ssd_training_log_resnet18.csv"
    csv.write_text(training_log(6, 3.0))
    stages = {
        "prepare": StageRecord(status="succeeded", duration_s=1.0, metrics={"images": 24}),
        "train": StageRecord(status="succeeded", duration_s=30.0, metrics={"mAP": 0.54, "loss": float("nan")},
                             outputs=[{"path": str(csv), "kind": "file"}], artifacts={"model": "train/weights/x.hdf5"}),
        "evaluate": StageRecord(status="succeeded", duration_s=2.0,
                                metrics={"mAP": 0.54, "ap": {"car": 0.6, "lpd": 0.48}}),
        "prune": StageRecord(status="succeeded", duration_s=2.0, metrics={"pruning_ratio": 0.42}),
    }
    if with_retrain:
        (run / "retrain").mkdir()
        (run / "retrain" / "ssd_training_log_resnet18.csv").write_text(training_log(4, 1.0))
        stages["retrain"] = StageRecord(status="succeeded", duration_s=20.0, metrics={"mAP": 0.5})
        stages["evaluate_retrain"] = StageRecord(status="succeeded", duration_s=2.0,
                                                 metrics={"mAP": 0.51, "ap": {"car": 0.55, "lpd": 0.47}})
    save_manifest(run, Manifest(tltpipe="0.1.0", name="lpd", network="ssd", toolkit="5.0", stages=stages))
    return run


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.external = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs["src"])
        for key in ("href", "src"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])


def test_report_writes_charts_html_and_metrics(tmp_path):
    run = make_run(tmp_path)
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    folder = run / "report"
    for name in ("loss", "lr", "map", "ap_per_class", "pruning"):
        with Image.open(folder / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == (charts.WIDTH, charts.HEIGHT)
            assert len(image.convert("RGB").getcolors(1 << 16) or []) > 5  # something was drawn
    page = Page()
    page.feed((folder / "report.html").read_text())
    assert page.sections == ["stages", "training", "ap", "pruning", "metrics"]
    assert len(page.images) == 5 and page.external == []
    for src in page.images:
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"))
        assert Image.open(io.BytesIO(png)).size == (charts.WIDTH, charts.HEIGHT)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]["train"]] == [1, 2, 3, 4, 5, 6]
    assert metrics["history"]["train"][0]["map"] is None and metrics["stages"]["train"]["metrics"]["loss"] is None
    assert metrics["ap"]["evaluate_retrain"] == {"car": 0.55, "lpd": 0.47, "mAP": 0.51}
    assert metrics["pruning"] == [{"model": "trained", "ratio": 1.0, "mAP": 0.54},
                                  {"model": "pruned + retrained", "ratio": 0.42, "mAP": 0.51}]


def test_a_copied_run_reports_its_own_training_log_not_the_originals(tmp_path):
    import shutil

    original = make_run(tmp_path, with_retrain=False)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    (copy / "train" / "ssd_training_log_resnet18.csv").write_text(training_log(3, 3.0))  # the copy trained less
    assert CliRunner().invoke(main, ["report", str(copy)]).exit_code == 0
    metrics = json.loads((copy / "report" / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]["train"]] == [1, 2, 3]  # the manifest names the original's


def test_report_of_a_partial_run_still_draws(tmp_path):
    run = make_run(tmp_path, with_retrain=False)
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    with Image.open(run / "report" / "pruning.png") as image:
        assert image.size == (charts.WIDTH, charts.HEIGHT)


def test_report_needs_a_run_directory(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.json" in result.output


def test_nice_ticks():
    assert [round(t, 6) for t in charts.nice_ticks(0.0, 1.0)] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = charts.nice_ticks(0.013, 0.087)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.087 and len(ticks) <= 7
    assert charts.nice_ticks(5.0, 5.0)[0] < 5.0 < charts.nice_ticks(5.0, 5.0)[-1]
    assert all(isinstance(t, float) for t in charts.nice_ticks(1, 12, 8))  # whole steps too


def test_ticks_and_charts_of_extreme_losses_end_and_draw():
    """Huge, nearly equal losses once looped forever (a step below the float resolution); +-1.7e308 overflowed."""
    ticks = charts.nice_ticks(1e16, 1.0000000000000002e16)
    assert 2 <= len(ticks) <= 20 and ticks[0] <= 1e16 <= ticks[-1]
    wide = charts.nice_ticks(-1.7e308, 1.7e308)
    assert 2 <= len(wide) <= 20 and all(abs(t) < float("inf") for t in wide)
    assert charts.nice_ticks(3.0, 1.0)[0] <= 1.0  # reversed bounds
    for values in ((1e16, 1.0000000000000002e16), (-1.7e308, 1.7e308)):
        image = charts.line_chart("loss", {"train": [(1, values[0]), (2, values[1])]})
        assert image.size == (charts.WIDTH, charts.HEIGHT)


def test_line_chart_of_twelve_epochs():
    image = charts.line_chart("loss", {"train": [(e, 1.0 / e) for e in range(1, 13)]})
    assert image.size == (charts.WIDTH, charts.HEIGHT)


def _inference(run: Path, stage: str, results: str, boxes: dict[str, list[str]]) -> StageRecord:
    (run / results / "labels").mkdir(parents=True)
    for stem, lines in boxes.items():
        (run / results / "labels" / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
    return StageRecord(status="succeeded", metrics={"images": len(boxes), "threshold": 0.3, "precision": "int8"},
                       artifacts={"results": results, "images": "data/kitti/val/images"})


def test_report_draws_the_detections_of_the_model_and_the_engine_on_the_test_images(tmp_path):
    run = make_run(tmp_path)
    images = run / "data" / "kitti" / "val" / "images"
    images.mkdir(parents=True)
    for i in range(14):
        Image.new("RGB", (400, 200), "white").save(images / f"img{i:02d}.jpg")
    box = "lpd 0.00 0 0.00 100.00 50.00 300.00 150.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.8731"
    detections = {f"img{i:02d}": [box] for i in range(14)} | {"no_image": [box]}
    from tlt_pipe.manifest import load_manifest

    manifest = load_manifest(run)
    manifest.stages["inference"] = _inference(run, "inference", "infer", detections)
    manifest.stages["inference_engine"] = _inference(run, "inference_engine", "infer_engine", {"img00": []})
    save_manifest(run, manifest)
    assert CliRunner().invoke(main, ["report", str(run)]).exit_code == 0
    with Image.open(run / "report" / "inference.png") as grid:
        assert grid.size == (4 * 256, 32 + 3 * (256 + 22))  # 12 images, 4 a row
        # img00 is drawn 256x128 in the first cell; its box (100..300, 50..150) scales by 0.64
        red_ish = grid.convert("RGB").getpixel((round(100 * 0.64), 32 + round(75 * 0.64)))
        assert red_ish != (255, 255, 255) and red_ish == grid.convert("RGB").getpixel((round(100 * 0.64), 32 + 60))
        assert grid.convert("RGB").getpixel((round(200 * 0.64), 32 + round(100 * 0.64))) == (255, 255, 255)  # inside
    with Image.open(run / "report" / "inference_engine.png") as grid:
        assert grid.size == (256, 32 + 256 + 22)  # one image, no detections
    page = Page()
    page.feed((run / "report" / "report.html").read_text())
    assert page.sections == ["stages", "training", "ap", "pruning", "detections", "metrics"]
    assert len(page.images) == 7 and page.external == []


def test_read_detections_keeps_the_confidence():
    from tlt_pipe.gallery import read_detections

    found = read_detections("lpd 0.00 0 0.00 1.5 2 30 40 0 0 0 0 0 0 0 0.25\nbad line\ncar 0 0 0 1 2 3 4 0 0 0 0 0 0 0\n")
    assert [(d.cls, d.box, d.score) for d in found] == [("lpd", (1.5, 2.0, 30.0, 40.0), 0.25), ("car", (1, 2, 3, 4), None)]
