"""`--to coco`: every source format gives, image by image, the boxes `--to kitti` gives, read back with pycocotools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from pycocotools.coco import COCO

from tlt_pipe.datasets import ConvertOptions, convert
from tlt_pipe.datasets.coco import FoldRecords, ImageRecord, bbox, coco_document, image_entries, write_coco
from tlt_pipe.datasets.layout import make_layout
from tlt_pipe.datasets.options import TARGETS
from tlt_pipe.datasets.sample import sample_crpd

FOLDS = ("train", "val")
RESIZE = (320, 192)

# format -> (fixture builder, options); the split is the source's own where it has one
SOURCES = {
    "kitti": ("build_kitti", dict(val_split=50)),
    "voc": ("build_voc", dict(val_split=50, classes={"mask": "Mask", "none": "No Mask"})),
    "yolo": ("build_yolo", {}),
    "ccpd": ("build_ccpd", {}),
    "crpd": ("build_crpd", {}),
    "openalpr": ("build_openalpr", dict(val_split=50)),
}


def run(fmt, src, out, **kw):
    kw.setdefault("jobs", 1)
    return convert(fmt, src, out, ConvertOptions(**kw))


def kitti_boxes(out: Path) -> dict[tuple[str, str], list[tuple]]:
    """(fold, image file name) -> [(class, x1, y1, x2, y2)] from a KITTI output."""
    found = {}
    for fold in FOLDS:
        for image in sorted((out / fold / "images").iterdir()):
            lines = (out / fold / "labels" / f"{image.stem}.txt").read_text(encoding="utf-8").splitlines()
            found[fold, image.name] = [(f[0], *map(float, f[4:8])) for f in (line.split() for line in lines)]
    return found


def coco_folds(out: Path) -> dict[str, COCO]:
    return {fold: COCO(str(out / fold / "annotations.json")) for fold in FOLDS}


def coco_boxes(folds: dict[str, COCO]) -> dict[tuple[str, str], list[tuple]]:
    """(fold, file name) -> [(category name, x, y, w, h)] in annotation-id order."""
    found = {}
    for fold, api in folds.items():
        names = {c["id"]: c["name"] for c in api.loadCats(api.getCatIds())}
        for image in api.loadImgs(api.getImgIds()):
            annotations = sorted(api.loadAnns(api.getAnnIds(imgIds=[image["id"]])), key=lambda a: a["id"])
            found[fold, image["file_name"]] = [(names[a["category_id"]], *a["bbox"]) for a in annotations]
    return found


def check_ids(folds: dict[str, COCO], classes: list[str]) -> None:
    """Images 1..M by file name, annotations 1..K by (image, object order), the same categories 1..N."""
    for fold, api in folds.items():
        data = api.dataset
        assert [c for c in data["categories"]] == [{"id": n, "name": c} for n, c in enumerate(classes, start=1)], fold
        images = data["images"]
        assert [i["id"] for i in images] == list(range(1, len(images) + 1))
        assert [i["file_name"] for i in images] == sorted(i["file_name"] for i in images)
        annotations = data["annotations"]
        assert [a["id"] for a in annotations] == list(range(1, len(annotations) + 1))
        assert [a["image_id"] for a in annotations] == sorted(a["image_id"] for a in annotations)
        for a in annotations:
            assert a["iscrowd"] == 0 and a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3])
            assert set(a) == {"id", "image_id", "category_id", "bbox", "area", "iscrowd"}


def assert_same_as_kitti(kitti_out: Path, coco_out: Path) -> dict[str, COCO]:
    folds = coco_folds(coco_out)
    expected, got = kitti_boxes(kitti_out), coco_boxes(folds)
    assert sorted(got) == sorted(expected)  # the same images in the same folds
    for key, boxes in expected.items():
        assert [b[0] for b in got[key]] == [b[0] for b in boxes], key
        for (_, x, y, w, h), (_, x1, y1, x2, y2) in zip(got[key], boxes):
            assert (x, y) == (x1, y1), key
            assert (x + w, y + h) == (pytest.approx(x2, abs=1e-9), pytest.approx(y2, abs=1e-9)), key
    for fold, api in folds.items():  # the sizes are the files' own
        for image in api.dataset["images"]:
            with Image.open(coco_out / fold / "images" / image["file_name"]) as opened:
                assert opened.size == (image["width"], image["height"])
    assert not (coco_out / "train" / "labels").exists()
    return folds


@pytest.mark.parametrize("resize", [None, RESIZE], ids=["as-is", "resized"])
@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_every_format_gives_the_kitti_boxes(tmp_path, fx, fmt, resize):
    builder, options = SOURCES[fmt]
    src = getattr(fx, builder)(tmp_path / "src" / fmt)
    kitti_report = run(fmt, src, tmp_path / "kitti", resize=resize, **options)
    report = run(fmt, src, tmp_path / "coco", to="coco", resize=resize, **options)
    folds = assert_same_as_kitti(tmp_path / "kitti", tmp_path / "coco")
    assert sum(len(api.dataset["annotations"]) for api in folds.values()) == sum(report.objects_per_class.values()) > 0
    classes = sorted(report.objects_per_class)
    if options.get("classes"):
        classes = sorted({c.lower().replace(" ", "_") for c in options["classes"].values()})
    check_ids(folds, classes)
    if resize:
        assert {(i["width"], i["height"]) for api in folds.values() for i in api.dataset["images"]} == {resize}
    # the report is the KITTI one but for the layout and the paths
    assert report.layout == "coco"
    mine = {**report.to_dict(), "layout": "kitti", "seconds": 0, "output": "", "side_file": bool(report.side_file)}
    assert mine == {**kitti_report.to_dict(), "seconds": 0, "output": "", "side_file": bool(kitti_report.side_file)}
    # the same conversion again: the same bytes
    run(fmt, src, tmp_path / "again", to="coco", resize=resize, **options)
    for fold in FOLDS:
        assert (tmp_path / "again" / fold / "annotations.json").read_bytes() == \
            (tmp_path / "coco" / fold / "annotations.json").read_bytes()


def test_a_class_without_boxes_in_a_fold_is_still_a_category(tmp_path, fx):
    src = fx.build_yolo(tmp_path / "yolo")
    run("yolo", src, tmp_path / "coco", to="coco")
    folds = coco_folds(tmp_path / "coco")
    for api in folds.values():
        assert api.dataset["categories"] == [{"id": 1, "name": "mask"}, {"id": 2, "name": "no_mask"}]
    assert {a["category_id"] for a in folds["val"].dataset["annotations"]} == {2}
    # the val image is a PNG, clamped: 200x100, "1 0.5 0.5 1.2 0.5"
    [image] = folds["val"].dataset["images"]
    assert image["file_name"].endswith("_val_d.png") and (image["width"], image["height"]) == (200, 100)
    assert [a["bbox"] for a in folds["val"].dataset["annotations"]] == [[0.0, 25.0, 200.0, 50.0]]


def test_resize_scales_the_boxes(tmp_path, fx):
    src = fx.build_openalpr(tmp_path / "openalpr")
    run("openalpr", src, tmp_path / "coco", to="coco", val_split=0, resize=(640, 480))
    api = coco_folds(tmp_path / "coco")["train"]
    by_name = {i["file_name"].split("_", 1)[1]: i for i in api.dataset["images"]}
    wagen = by_name["eu_wagen.jpg"]  # 800x600 -> 640x480, (780, 590)-(800, 600) clamped
    assert (wagen["width"], wagen["height"]) == (640, 480)
    [annotation] = api.loadAnns(api.getAnnIds(imgIds=[wagen["id"]]))
    assert annotation["bbox"] == [624.0, 472.0, 16.0, 8.0] and annotation["area"] == 128.0


def test_pool_and_single_process_write_the_same_bytes(tmp_path):
    sample_crpd(tmp_path / "sample", 80, seed=3)
    run("crpd", tmp_path / "sample", tmp_path / "one", to="coco", val_split=20)
    run("crpd", tmp_path / "sample", tmp_path / "pool", to="coco", val_split=20, jobs=2)
    run("crpd", tmp_path / "sample", tmp_path / "kitti", val_split=20, jobs=2)
    for fold in FOLDS:
        assert (tmp_path / "one" / fold / "annotations.json").read_bytes() == \
            (tmp_path / "pool" / fold / "annotations.json").read_bytes()
    folds = assert_same_as_kitti(tmp_path / "kitti", tmp_path / "pool")
    assert len(folds["val"].dataset["images"]) >= 10


def test_plates_point_at_the_annotations(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    run("crpd", src, tmp_path / "coco", to="coco", val_split=0)
    plates = [json.loads(line) for line in (tmp_path / "coco" / "plates.jsonl").read_text(encoding="utf-8").splitlines()]
    [plate] = [p for p in plates if p["source"].endswith("CRPD_multi/train/labels/70_0001.txt:2")]
    assert plate["label"] == "train/annotations.json" and (tmp_path / "coco" / plate["image"]).is_file()
    api = COCO(str(tmp_path / "coco" / plate["label"]))
    [image] = [i for i in api.dataset["images"] if f"train/images/{i['file_name']}" == plate["image"]]
    annotations = sorted(api.loadAnns(api.getAnnIds(imgIds=[image["id"]])), key=lambda a: a["id"])
    assert annotations[plate["line"] - 1]["bbox"] == [205.0, 200.0, 45.0, 30.0]


def test_every_target_has_a_layout(tmp_path):
    assert [make_layout(target, tmp_path).name for target in TARGETS] == list(TARGETS)
    assert "coco" in TARGETS


# -- the pure functions -------------------------------------------------------------------


def test_bbox_is_the_kitti_box_to_a_hundredth():
    assert bbox(10.504, 20, 20.507, 30) == [10.5, 20.0, 10.01, 10.0]  # KITTI writes 10.50 ... 20.51
    assert bbox(-0.0, -0.0, 5, 5) == [0.0, 0.0, 5.0, 5.0] and str(bbox(-0.0, 0, 1, 1)[0]) == "0.0"


def test_coco_document_ids_and_categories():
    records = [
        ImageRecord("b.jpg", 640, 360, (("car", 1, 2, 11, 22), ("bus", 5, 5, 6, 6))),
        ImageRecord("a.jpg", 320, 200),
        ImageRecord("c.png", 100, 100, (("car", 0, 0, 100, 100),)),
    ]
    document = coco_document(records, ["bus", "car", "tram"])
    assert document["images"] == [
        {"id": 1, "file_name": "a.jpg", "width": 320, "height": 200},
        {"id": 2, "file_name": "b.jpg", "width": 640, "height": 360},
        {"id": 3, "file_name": "c.png", "width": 100, "height": 100},
    ]
    assert document["annotations"] == [
        {"id": 1, "image_id": 2, "category_id": 2, "bbox": [1.0, 2.0, 10.0, 20.0], "area": 200.0, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5.0, 5.0, 1.0, 1.0], "area": 1.0, "iscrowd": 0},
        {"id": 3, "image_id": 3, "category_id": 2, "bbox": [0.0, 0.0, 100.0, 100.0], "area": 10000.0, "iscrowd": 0},
    ]
    assert document["categories"] == [{"id": 1, "name": "bus"}, {"id": 2, "name": "car"}, {"id": 3, "name": "tram"}]
    with pytest.raises(ValueError, match="b.jpg: class 'bus' is not one of the categories"):
        coco_document(records, ["car"])
    with pytest.raises(ValueError, match="a class name twice"):
        coco_document(records, ["bus", "car", "bus"])
    with pytest.raises(ValueError, match="out of file-name order"):
        list(image_entries([records[1], records[1]]))


def test_fold_records_iterate_compactly_in_name_order_and_stream_the_document(tmp_path):
    fold = FoldRecords()
    fold.add("z.jpg", (64, 48), [("car", 1.5, 2, 30, 40.25)])
    fold.add("m.jpg", (64, 48), [])
    fold.add("a.jpg", (32, 16), [("bus", 0, 0, 8, 8), ("car", 1, 1, 2, 2)])
    records = list(fold)
    assert len(fold) == 3 and records == [
        ImageRecord("a.jpg", 32, 16, (("bus", 0.0, 0.0, 8.0, 8.0), ("car", 1.0, 1.0, 2.0, 2.0))),
        ImageRecord("m.jpg", 64, 48, ()),
        ImageRecord("z.jpg", 64, 48, (("car", 1.5, 2.0, 30.0, 40.25),)),
    ]
    path = tmp_path / "annotations.json"
    write_coco(path, fold, ["bus", "car"])
    assert json.loads(path.read_text(encoding="utf-8")) == coco_document(records, ["bus", "car"])
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == 3 + 3 + 2 + 6  # one entry a line, and a line for each list opened and closed
    empty = tmp_path / "empty.json"
    write_coco(empty, FoldRecords(), ["bus"])
    assert json.loads(empty.read_text()) == {"images": [], "annotations": [], "categories": [{"id": 1, "name": "bus"}]}


def test_write_is_atomic(tmp_path):
    path = tmp_path / "annotations.json"
    write_coco(path, [ImageRecord("a.jpg", 8, 8, (("car", 0, 0, 4, 4),))], ["car"])
    before = path.read_bytes()
    with pytest.raises(ValueError):  # fails half way, in the annotations
        write_coco(path, [ImageRecord("a.jpg", 8, 8, (("cat", 0, 0, 4, 4),))], ["car"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["annotations.json"]


# -- the command ----------------------------------------------------------------------------


def test_command_to_coco(tmp_path, fx):
    from click.testing import CliRunner

    from tlt_pipe.datasets.command import convert as command

    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    result = CliRunner().invoke(command, ["crpd", str(src), str(out), "--to", "coco", "--jobs", "1", "--classes",
                                          "lpd=plate"])
    assert result.exit_code == 0, result.output
    assert "crpd -> coco: 10 images" in result.output and "objects: plate 11" in result.output
    assert json.loads((out / "report.json").read_text())["layout"] == "coco"
    assert sorted(p.name for p in out.iterdir()) == ["plates.jsonl", "report.json", "train", "val"]
    assert sorted(p.name for p in (out / "train").iterdir()) == ["annotations.json", "images"]
    result = CliRunner().invoke(command, ["crpd", str(src), str(tmp_path / "strict"), "--to", "coco", "--strict"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output == f"Error: {src}/CRPD_single/train/labels/52_9999.txt: label file without an image\n"
    assert not (tmp_path / "strict").exists()
