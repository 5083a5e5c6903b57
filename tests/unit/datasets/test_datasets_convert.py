"""Each format converts its own fixture set to KITTI; every output line is checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tlt_pipe.datasets import ConvertOptions, ConvertReport, convert
from tlt_pipe.errors import ConfigError, InputError


def lpd(x1, y1, x2, y2, cls="lpd", occ=0, trunc=0.0):
    return f"{cls} {trunc:.2f} {occ} 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00"


def run(fmt, src, out, **kw):
    kw.setdefault("jobs", 1)
    return convert(fmt, src, out, ConvertOptions(**kw))


# -- CRPD ---------------------------------------------------------------------------------


def test_crpd_every_line(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    report = run("crpd", src, out, val_split=0)
    assert fx.read_output(out) == {
        "single_train_52_0278": ("train", [lpd(10, 20, 110, 50)]),
        "single_train_52_0279": ("train", [lpd(10, 20, 110, 50)]),  # BOM, commas, CRLF, other corner order
        "single_train_52_0280": ("train", [lpd(300, 100, 400, 140)]),  # 9 fields
        "single_train_52_0281": ("train", []),  # empty file -> empty label
        "single_train_52_0282": ("train", [lpd(600, 300, 640, 360)]),  # clamped
        "single_train_52_0283": ("train", [lpd(19.75, 30, 61, 50)]),  # bad lines skipped
        "single_train_52_0284": ("train", []),  # degenerate dropped
        "single_val_52_0278": ("train", [lpd(200, 200, 260, 220)]),  # same stem, other split
        "double_train_52_0278": ("train", [lpd(10, 20, 110, 50), lpd(400, 20, 500, 50)]),
        "multi_train_70_0001": ("train", [lpd(10, 40, 50, 60), lpd(205, 200, 250, 230), lpd(400, 300, 450, 320)]),
    }
    assert fx.assert_valid_kitti(out) == 11
    assert report.images == 10 and report.train_images == 10 and report.val_images == 0
    assert report.objects_per_class == {"lpd": 11}
    assert report.image_extension == ".jpg"
    assert report.size_histogram == {"640x360": 10}
    assert report.clamped.count == 1
    assert any(line.startswith("clamped to the image: 1 boxes (e.g. ") and line.endswith("52_0282.txt:1)")
               for line in report.summary_lines())
    assert report.clamped.examples == ["crpd/CRPD_single/train/labels/52_0282.txt:1"] or report.clamped.examples[0].endswith(
        "CRPD_single/train/labels/52_0282.txt:1")
    drops = {reason: tally.count for reason, tally in report.dropped.items()}
    assert drops == {
        "degenerate box": 1,
        "label without image": 1,
        "malformed line": 1,
        "non-numeric field": 1,
        "unreadable image": 2,
    }
    assert report.dropped["malformed line"].examples[0].endswith(
        "CRPD_single/train/labels/52_0283.txt:1: expected 8 corner numbers, got 3 fields")
    assert report.dropped["non-numeric field"].examples[0].endswith(
        "52_0283.txt:2: expected 8 corner numbers, got 'abc'")
    assert report.unreadable.count == 2
    assert any("truncated" in e for e in report.unreadable.examples)
    assert {r: t.count for r, t in report.skipped.items()} == {
        "held out (test split)": 1,
        "image without label file": 1,
    }
    assert report.skipped["held out (test split)"].examples[0].endswith("CRPD_single/test/images/60_0001.jpg")


def test_crpd_plate_side_file(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    report = run("crpd", src, out, val_split=0)
    assert report.side_file == str(out / "plates.jsonl")
    plates = [json.loads(line) for line in (out / "plates.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(plates) == 11
    by_source = {p["source"].split("crpd/", 1)[1]: p for p in plates}
    first = by_source["CRPD_single/train/labels/52_0278.txt:1"]
    assert first["text"] == "京A12345" and first["type"] == 0 and first["line"] == 1
    assert first["box"] == [10, 20, 110, 50]
    assert first["corners"] == [[10, 20], [110, 20], [110, 50], [10, 50]]
    assert (out / first["image"]).is_file() and (out / first["label"]).is_file()
    assert by_source["CRPD_single/train/labels/52_0279.txt:1"]["text"] == "沪B67890"
    assert by_source["CRPD_single/train/labels/52_0280.txt:1"]["text"] is None  # 9 fields
    multi = [p for s, p in by_source.items() if "70_0001" in s]
    assert [p["line"] for p in multi] == [1, 2, 3]
    # the plate line number points at the matching KITTI line
    label_lines = (out / multi[1]["label"]).read_text().splitlines()
    assert label_lines[multi[1]["line"] - 1].split()[4:8] == ["205.00", "200.00", "250.00", "230.00"]


def test_crpd_subsets(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    report = run("crpd", src, tmp_path / "out", val_split=0, subsets=["double", "CRPD_multi"])
    assert sorted(fx.read_output(tmp_path / "out")) == ["double_train_52_0278", "multi_train_70_0001"]
    assert report.dropped == {}


def test_crpd_split_dir_as_source(tmp_path, fx):
    """SRC may be one split directory (images/ + labels/), as in `data/labels/52_0278.txt:3`."""
    src = tmp_path / "data"
    fx.write_image(src / "images" / "52_0278.jpg")
    fx.write_text(src / "labels" / "52_0278.txt", "1 2 3 4 5 6 7 8 0 A\n1 2 abc\n")
    with pytest.raises(InputError) as error:
        convert("crpd", Path(os.path.relpath(src)), tmp_path / "out", ConvertOptions(strict=True, jobs=1))
    assert str(error.value) == f"{os.path.relpath(src)}/labels/52_0278.txt:2: expected 8 corner numbers, got 3 fields"
    assert error.value.exit_code == 2
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary tree left


def test_names_do_not_sort_by_subset(tmp_path, fx):
    src = tmp_path / "crpd"
    for subset in ("single", "double", "multi"):
        for i in range(12):
            fx.write_image(src / f"CRPD_{subset}" / "train" / "images" / f"{i:02d}.jpg", (64, 48))
            fx.write_text(src / f"CRPD_{subset}" / "train" / "labels" / f"{i:02d}.txt", "1 1 30 1 30 20 1 20 0 A\n")
    run("crpd", src, tmp_path / "out", val_split=0)
    names = sorted(p.name for p in (tmp_path / "out" / "train" / "images").iterdir())
    subsets = [n.split("_")[1] for n in names]
    first_third = subsets[: len(subsets) // 3]
    assert len(set(first_third)) > 1, first_third  # TAO's alphabetical val split is not one subset


# -- CCPD ---------------------------------------------------------------------------------


def test_ccpd_with_split_lists(tmp_path, fx):
    src = fx.build_ccpd(tmp_path / "ccpd")
    out = tmp_path / "out"
    report = run("ccpd", src, out)
    outputs = fx.read_output(out)
    assert outputs == {
        f"base_{fx.CCPD_EXAMPLE.replace('&', '_')}": ("train", [lpd(154, 383, 386, 473)]),
        f"blur_{fx.CCPD_OTHER.replace('&', '_')}": ("val", [lpd(298, 341, 449, 414)]),
    }
    fx.assert_valid_kitti(out)
    assert report.split_source == "source"
    skipped = {r: t.count for r, t in report.skipped.items()}
    assert skipped == {
        "duplicate of a file in another subset": 1,  # ccpd_tilt copy of the base image
        "held out (test split)": 1,  # ccpd_challenge, listed in test.txt
        "no plate (ccpd_np, or no box in the file name)": 2,  # ccpd_np and an unparsable name
    }
    plates = [json.loads(line) for line in (out / "plates.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {p["text"] for p in plates}
    assert "皖AY339S" in texts
    example = next(p for p in plates if p["text"] == "皖AY339S")
    assert example["vertices"] == [[386, 473], [177, 454], [154, 383], [363, 402]]
    assert example["brightness"] == 37 and example["blur"] == 15


def test_ccpd_without_lists_and_unlisted(tmp_path, fx):
    src = fx.build_ccpd(tmp_path / "ccpd", with_lists=False)
    report = run("ccpd", src, tmp_path / "out", val_split=0)
    assert report.split_source == "random"
    assert report.images == 3  # base (tilt duplicate dropped), blur, challenge
    fx.write_text(src / "splits" / "train.txt", f"ccpd_base/{fx.CCPD_EXAMPLE}.jpg\n")
    fx.write_text(src / "splits" / "val.txt", f"ccpd_blur/{fx.CCPD_OTHER}.jpg\n")
    report = run("ccpd", src, tmp_path / "out2")
    assert report.skipped["not in the train/val split lists"].count == 3  # challenge, tilt, weather
    assert report.images == 2


def test_ccpd2020_green(tmp_path, fx):
    src = fx.build_ccpd_green(tmp_path / "ccpd2020")
    out = tmp_path / "out"
    report = run("ccpd", src, out)
    outputs = fx.read_output(out)
    name = fx.CCPD_GREEN.replace("&", "_")
    assert outputs == {
        f"green_train_0{name}": ("train", [lpd(255, 434, 432, 512)]),
        f"green_val_1{name}": ("val", [lpd(255, 434, 432, 512)]),
    }
    assert report.skipped["held out (test split)"].count == 1
    plate = json.loads((out / "plates.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert plate["text"] == "皖AD06842"  # 8 indices: a green plate


# -- YOLO ---------------------------------------------------------------------------------


def test_yolo_every_line(tmp_path, fx):
    src = fx.build_yolo(tmp_path / "yolo")
    out = tmp_path / "out"
    report = run("yolo", src, out)
    assert fx.read_output(out) == {
        "train_a": ("train", [lpd(150, 120, 250, 180, "mask"), lpd(0, 0, 80, 60, "no_mask")]),
        "train_b": ("train", [lpd(100, 75, 300, 225, "no_mask")]),
        "train_c": ("train", []),  # no label file: a background image
        "val_d": ("val", [lpd(0, 25, 200, 75, "no_mask")]),  # PNG, clamped
    }
    fx.assert_valid_kitti(out)
    assert (out / "val" / "images").iterdir().__next__().suffix == ".png"
    assert report.split_source == "source"
    assert report.unknown_classes == {"id 5": 1}
    assert report.dropped["unknown class"].examples == ["yolo/labels/train/b.txt:1: class id 5 is not in the 2 class names"] or \
        report.dropped["unknown class"].examples[0].endswith("labels/train/b.txt:1: class id 5 is not in the 2 class names")
    assert report.dropped["label without image"].count == 1
    assert report.clamped.count == 1
    assert report.image_extensions == {".jpg": 3, ".png": 1}
    assert any("mixed image formats" in w for w in report.warnings)


def test_yolo_names_file_and_class_map(tmp_path, fx):
    src = fx.build_yolo(tmp_path / "yolo")
    (src / "data.yaml").unlink()
    names = fx.write_text(tmp_path / "obj.names", "Mask\nNo Mask\n\n")
    report = run("yolo", src, tmp_path / "out", names_file=names, classes={"mask": "face", "no mask": "face"})
    assert report.objects_per_class == {"face": 4}
    with pytest.raises(ConfigError, match="no YOLO class names"):
        run("yolo", src, tmp_path / "out2")


# -- VOC ----------------------------------------------------------------------------------


def test_voc_every_line(tmp_path, fx):
    src = fx.build_voc(tmp_path / "voc")
    out = tmp_path / "out"
    report = run("voc", src, out, val_split=0, classes={"mask": "Mask", "none": "No-Mask"})
    assert fx.read_output(out) == {
        # 1-based -> 0-based; difficult -> occlusion 1; class lower-cased for TAO
        "m1": ("train", [lpd(0, 0, 99, 49, "mask"), lpd(200, 100, 299, 399, "no-mask", occ=1)]),
        "m2": ("train", [lpd(10, 20, 40, 60, "mask")]),
    }
    fx.assert_valid_kitti(out)
    drops = {r: t.examples[0].split("voc/", 1)[1] for r, t in report.dropped.items()}
    assert drops == {
        "malformed line": "Annotations/m2.xml:5: object 'mask' without a <bndbox>",
        "non-numeric field": "Annotations/m2.xml:11: object 'mask': <xmax> is 'ten'",
        "unknown class": "Annotations/m2.xml:13: unknown class 'hat'",
        "missing image": "Annotations/m3.xml: no image m3.* in JPEGImages",
        "unparsable label file": "Annotations/m4.xml:2: not valid XML: mismatched tag",
    }
    assert report.unknown_classes == {"hat": 1}
    assert report.skipped["image without label file"].count == 1


def test_to_voc_layout_for_pytorch_ssd(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "ssd"
    report = run("crpd", src, out, to="voc", val_split=30, classes={"lpd": "plate"})
    assert (out / "labels.txt").read_text() == "plate\n"
    lists = {n: (out / "ImageSets" / "Main" / f"{n}.txt").read_text().split() for n in ("train", "val", "trainval", "test")}
    assert lists["trainval"] == lists["train"] and lists["test"] == lists["val"]
    assert len(lists["train"]) == report.train_images and len(lists["val"]) == report.val_images >= 1
    assert not set(lists["train"]) & set(lists["val"])
    ids = lists["train"] + lists["val"]
    assert sorted(p.stem for p in (out / "JPEGImages").iterdir()) == sorted(ids)
    assert sorted(p.stem for p in (out / "Annotations").iterdir()) == sorted(ids)
    # the annotations read back (1-based) to the same boxes
    from tlt_pipe.datasets.voc import parse_voc

    [xml] = [p for p in (out / "Annotations").iterdir() if p.stem.endswith("multi_train_70_0001")]
    objects, problems = parse_voc(xml.read_bytes())
    assert problems == []
    assert [(o.cls, o.x1, o.y1, o.x2, o.y2) for o in objects] == [
        ("plate", 10, 40, 50, 60), ("plate", 205, 200, 250, 230), ("plate", 400, 300, 450, 320)]
    assert "<filename>" in xml.read_text() and "<width>640</width>" in xml.read_text()


# -- OpenALPR and KITTI -------------------------------------------------------------------


def test_openalpr_every_line(tmp_path, fx):
    src = fx.build_openalpr(tmp_path / "openalpr")
    out = tmp_path / "out"
    report = run("openalpr", src, out, val_split=0)
    assert fx.read_output(out) == {
        "us_car1": ("train", [lpd(100, 200, 150, 220)]),
        "eu_wagen": ("train", [lpd(780, 590, 800, 600)]),
        "eu_bad": ("train", []),
    }
    assert report.dropped["non-numeric field"].examples[0].endswith("eu/bad.txt:1: expected x y w h numbers, got 'ten'")
    assert report.dropped["label without image"].count == 1
    plates = [json.loads(line) for line in (out / "plates.jsonl").read_text().splitlines()]
    assert sorted(p["text"] for p in plates) == ["ABC123", "B-XY-123"]
    only_us = run("openalpr", src, tmp_path / "us", subsets=["us"], val_split=0)
    assert only_us.images == 1


def test_openalpr_tutorial_resize(tmp_path, fx):
    src = fx.build_openalpr(tmp_path / "openalpr")
    out = tmp_path / "out"
    run("openalpr", src, out, val_split=0, resize=(640, 480))
    outputs = fx.read_output(out)
    # 800x600 -> 640x480: x0.8 in both directions
    assert outputs["eu_wagen"] == ("train", [lpd(624, 472, 640, 480)])
    assert outputs["us_car1"] == ("train", [lpd(100, 200, 150, 220)])
    for image in (out / "train" / "images").iterdir():
        assert Image.open(image).size == (640, 480)


def test_kitti_validate_remap(tmp_path, fx):
    src = fx.build_kitti(tmp_path / "kitti")
    out = tmp_path / "out"
    report = run("kitti", src, out, val_split=0, classes={"car": "vehicle"})
    assert fx.read_output(out) == {
        "000001": ("train", [lpd(10.5, 20, 110.25, 80, "vehicle", occ=1, trunc=0.3)]),
        "000002": ("train", [lpd(500, 100, 620, 180, "vehicle")]),
    }
    assert report.image_extension == ".png"
    assert report.unknown_classes == {"Pedestrian": 1}
    assert report.dropped["dontcare region"].count == 1
    assert report.dropped["malformed line"].examples[0].endswith("label_2/000002.txt:1: expected 15 KITTI fields, got 8")
    assert report.dropped["non-numeric field"].examples[0].endswith("000002.txt:3: expected numbers after the class, got 'zero'")


@pytest.mark.parametrize("to", ["kitti", "coco"])
def test_a_file_name_that_is_not_utf8_is_converted_under_a_safe_name(tmp_path, to):
    src = os.fsencode(tmp_path / "raw")
    for folder in (b"images", b"labels"):
        os.makedirs(os.path.join(src, folder))
    for stem in (b"\xff\xfe", b"ok"):  # Latin-1 bytes: no UTF-8 decoding of the name exists
        Image.new("RGB", (64, 64)).save(os.path.join(src, b"images", stem + b".jpg"), format="JPEG")
        with open(os.path.join(src, b"labels", stem + b".txt"), "wb") as handle:
            handle.write(lpd(0, 0, 10, 10).encode() + b"\n")
    out = tmp_path / "out"
    report = run("kitti", Path(os.fsdecode(src)), out, val_split=0, to=to)
    assert report.images == 2
    names = sorted(p.name for p in out.rglob("*.jpg"))
    assert len(names) == 2 and all(name.isascii() for name in names)


# -- resizing -----------------------------------------------------------------------------


def test_resize_stretch_and_letterbox(tmp_path, fx):
    src = tmp_path / "data"
    fx.write_image(src / "images" / "wide.jpg", (1280, 720))
    fx.write_text(src / "labels" / "wide.txt", "640 360 1280 360 1280 720 640 720 0 A\n0 0 1 0 1 1 0 1 0 tiny\n")
    stretch = run("crpd", src, tmp_path / "s", resize=(320, 240), val_split=0)
    letter = run("crpd", src, tmp_path / "l", resize=(320, 240), resize_mode="letterbox", val_split=0)
    assert fx.read_output(tmp_path / "s") == {"wide": ("train", [lpd(160, 120, 320, 240)])}
    # 1280x720 -> 320x180 centred in 320x240: 30 px bars at top and bottom
    assert fx.read_output(tmp_path / "l") == {"wide": ("train", [lpd(160, 120, 320, 210)])}
    for out in ("s", "l"):
        [image] = (tmp_path / out / "train" / "images").iterdir()
        with Image.open(image) as im:
            assert im.size == (320, 240) and im.mode == "RGB"
    with Image.open(next((tmp_path / "l" / "train" / "images").iterdir())) as im:
        assert im.getpixel((160, 5)) == (114, 114, 114) and im.getpixel((160, 120)) != (114, 114, 114)
    # the 1x1 plate collapses once scaled: dropped and counted
    assert stretch.dropped["degenerate box"].count == 1 and letter.dropped["degenerate box"].count == 1
    assert stretch.resize == [320, 240] and letter.resize_mode == "letterbox"


@pytest.mark.parametrize("sources, ext, fmt", [(("a.jpg", "b.png", "c.jpg"), ".jpg", "JPEG"),
                                              (("a.png", "b.png", "c.jpg"), ".png", "PNG"),
                                              (("a.png", "b.bmp", "c.bmp"), ".bmp", "BMP"),
                                              (("a.png", "b.bmp"), ".png", "PNG")])
def test_resizing_writes_one_image_extension_the_sources_most_common(tmp_path, fx, sources, ext, fmt):
    src = tmp_path / "data"
    for name in sources:
        fx.write_image(src / "images" / name, (640, 360), {".jpg": "JPEG", ".png": "PNG", ".bmp": "BMP"}[name[-4:]])
        fx.write_text(src / "labels" / f"{name[:-4]}.txt", "10 20 110 20 110 50 10 50 0 A\n")
    report = run("crpd", src, tmp_path / "out", resize=(320, 192), val_split=0)
    written = sorted((tmp_path / "out" / "train" / "images").iterdir())
    assert len(written) == len(sources) and {p.suffix for p in written} == {ext}  # once .jpg and .png side by side
    assert report.image_extensions == {ext: len(sources)} and report.image_extension == ext
    assert not any("mixed image formats" in w for w in report.warnings)
    for path in written:
        with Image.open(path) as im:
            assert im.format == fmt and im.size == (320, 192)


def test_resize_must_be_multiple_of_16():
    with pytest.raises(ConfigError, match="multiple of 16"):
        ConvertOptions(resize=(960, 540))


def test_no_resize_hard_links(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    run("crpd", src, out, val_split=0)
    [linked] = [p for p in (out / "train" / "images").iterdir() if p.name.endswith("single_train_52_0278.jpg")]
    assert linked.stat().st_ino == (src / "CRPD_single/train/images/52_0278.jpg").stat().st_ino


def test_link_falls_back_to_copy(tmp_path, fx, monkeypatch):
    from tlt_pipe.datasets import images

    def refuse(a, b):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(images.os, "link", refuse)
    src = fx.build_crpd(tmp_path / "crpd")
    run("crpd", src, tmp_path / "out", val_split=0)
    [copied] = [p for p in (tmp_path / "out/train/images").iterdir() if p.name.endswith("single_train_52_0278.jpg")]
    original = src / "CRPD_single/train/images/52_0278.jpg"
    assert copied.stat().st_ino != original.stat().st_ino and copied.read_bytes() == original.read_bytes()


# -- split --------------------------------------------------------------------------------


def _many(fx, src: Path, n: int, classes=("car",), rare: dict | None = None) -> Path:
    rare = rare or {}
    for i in range(n):
        fx.write_image(src / "JPEGImages" / f"{i:03d}.jpg", (64, 48))
        names = [classes[i % len(classes)]] + [c for c, where in rare.items() if i in where]
        objects = "".join(fx.voc_object(c, (2, 2, 30, 30)) for c in names)
        fx.write_text(src / "Annotations" / f"{i:03d}.xml", f"<annotation>\n{objects}</annotation>\n")
    return src


def test_split_deterministic_stratified_and_parallel_equal(tmp_path, fx):
    src = _many(fx, tmp_path / "voc", 90, classes=("car", "bus"), rare={"bike": (5, 77), "tram": (3, 40, 88)})
    a = run("voc", src, tmp_path / "a", val_split=20, seed=3)
    b = run("voc", src, tmp_path / "b", val_split=20, seed=3, jobs=2)  # through the process pool
    c = run("voc", src, tmp_path / "c", val_split=20, seed=4)
    folds = lambda out: {k: f for k, (f, _) in fx.read_output(out).items()}  # noqa: E731
    assert folds(tmp_path / "a") == folds(tmp_path / "b")
    assert folds(tmp_path / "a") != folds(tmp_path / "c")
    assert a.to_dict() | {"output": "", "seconds": 0} == b.to_dict() | {"output": "", "seconds": 0}
    for report in (a, c):
        assert 15 <= report.val_images <= 22
        assert set(report.val_objects_per_class) == {"car", "bus", "bike", "tram"}
        for cls, n in report.objects_per_class.items():
            assert report.val_objects_per_class[cls] < n  # every class in both folds
    fx.assert_valid_kitti(tmp_path / "b")


# -- output directory safety ----------------------------------------------------------------


def test_existing_output_replaced_only_after_success(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    run("crpd", src, out, val_split=0)
    marker = out / "train" / "labels" / "previous-run.txt"
    marker.write_text("")
    with pytest.raises(InputError):
        run("crpd", src, out, strict=True)
    assert marker.exists()  # the failed run left the old output alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crpd", "out"]
    run("crpd", src, out, val_split=0)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crpd", "out"]


@pytest.mark.parametrize("source, reason", [
    ("empty", "empty: no voc image found"),
    ("unreadable", "no image was converted (unreadable image: 1, e.g. "),
    ("subsets", "no image in subsets"),
    ("yolo", "no image in subsets nosuch"),  # once "label without image": the labels of the left-out images
])
def test_a_conversion_that_writes_no_image_fails_and_keeps_the_earlier_output(tmp_path, fx, source, reason):
    out = tmp_path / "out"
    run("crpd", fx.build_crpd(tmp_path / "crpd"), out, val_split=0)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    if source == "subsets":
        fmt, src, options = "crpd", tmp_path / "crpd", {"subsets": ["nosuch"]}
    elif source == "yolo":
        fmt, src, options = "yolo", fx.build_yolo(tmp_path / "yolo"), {"subsets": ["nosuch"]}
    else:
        fmt, src, options = "voc", tmp_path / source, {}
        (src / "Annotations").mkdir(parents=True)
        (src / "JPEGImages").mkdir()
        if source == "unreadable":
            (src / "Annotations" / "a.xml").write_text(
                "<annotation><filename>a.jpg</filename><size><width>10</width><height>10</height></size></annotation>")
            (src / "JPEGImages" / "a.jpg").write_bytes(b"not a JPEG")
    with pytest.raises(InputError) as raised:
        run(fmt, src, out, **options)
    assert reason in str(raised.value) and str(raised.value).endswith(f"nothing was written to {out}")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["crpd", "out", *([source] if source != "subsets" else [])])


def test_interrupt_leaves_nothing_behind(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    run("crpd", src, out, val_split=0)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def interrupt(done, total):
        if total and done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert("crpd", src, out, ConvertOptions(jobs=1), on_progress=interrupt)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crpd", "out"]


def test_stale_temporary_tree_of_a_killed_run_is_removed(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    stale = tmp_path / ".out.tmp-999999999-abc"
    (stale / "train").mkdir(parents=True)
    run("crpd", src, tmp_path / "out")
    assert not stale.exists()


def test_refuses_foreign_or_nested_outputs(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    foreign = tmp_path / "home"
    (foreign / "precious.txt").parent.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a tltpipe conversion output"):
        run("crpd", src, foreign)
    assert (foreign / "precious.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="inside the source"):
        run("crpd", src, src / "out")
    with pytest.raises(ConfigError, match="must not contain the source"):
        run("crpd", src, tmp_path)
    with pytest.raises(InputError, match="no such directory"):
        run("crpd", tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown dataset format"):
        run("coco", src, tmp_path / "out")


def test_report_json_round_trip(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    out = tmp_path / "out"
    report = run("crpd", src, out)
    data = fx.load_report(out)
    assert data["images"] == report.images and data["image_extension"] == ".jpg"
    assert data["dropped"]["unreadable image"]["count"] == 2
    again = ConvertReport.from_json((out / "report.json").read_text(encoding="utf-8"))
    assert again == report
    lines = report.summary_lines()
    assert lines[0].startswith("crpd -> kitti: 10 images")
    assert any(line.startswith("dropped, unreadable image: 2") for line in lines)


def test_strict_error_in_the_pool_stops_workers_and_cleans_up(tmp_path, fx):
    import multiprocessing

    src = tmp_path / "data"
    for i in range(80):
        fx.write_image(src / "images" / f"{i:03d}.jpg", (64, 48))
        fx.write_text(src / "labels" / f"{i:03d}.txt", "1 1 30 1 30 20 1 20 0 A\n" if i != 41 else "1 1 x\n")
    with pytest.raises(InputError, match=r"labels/041\.txt:1: expected 8 corner numbers, got 3 fields"):
        convert("crpd", src, tmp_path / "out", ConvertOptions(jobs=2, strict=True))
    assert multiprocessing.active_children() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    report = convert("crpd", src, tmp_path / "out", ConvertOptions(jobs=2))
    assert report.images == 80 and report.dropped["malformed line"].count == 1


def test_source_splits_honoured_or_resplit(tmp_path, fx):
    src = tmp_path / "kitti"
    for split, n in (("train", 8), ("val", 2), ("test", 1)):
        for i in range(n):
            fx.write_image(src / split / "images" / f"{split}{i}.jpg", (64, 48))
            fx.write_text(src / split / "labels" / f"{split}{i}.txt", "car 0 0 0 1 1 30 30 0 0 0 0 0 0 0\n")
    honoured = run("kitti", src, tmp_path / "a", val_split=50)
    assert (honoured.split_source, honoured.train_images, honoured.val_images) == ("source", 8, 2)
    assert honoured.skipped["held out (test split)"].count == 1
    assert {k: f for k, (f, _) in fx.read_output(tmp_path / "a").items()} == {
        **{f"train_train{i}": "train" for i in range(8)}, "val_val0": "val", "val_val1": "val"}
    again = run("kitti", src, tmp_path / "b", val_split=50, resplit=True)
    assert again.split_source == "random" and again.val_images == 5
    only_train = run("kitti", src / "train", tmp_path / "c", val_split=25)  # no val part: split afresh
    assert only_train.split_source == "random" and only_train.val_images == 2
    assert run("kitti", src, tmp_path / "d", subsets=["x"]).warnings[0] == "kitti has no subsets: subsets x ignored"


def test_pool_with_threads_running_uses_forkserver(tmp_path, fx):
    """A progress display thread in the caller: workers must not be forked from it."""
    import importlib
    import threading

    pools = importlib.import_module("tlt_pipe.process_pool")

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert pools._start_method() == "forkserver"
        src = _many(fx, tmp_path / "voc", 70)
        report = run("voc", src, tmp_path / "out", jobs=2, val_split=10)
    finally:
        stop.set()
        thread.join()
    assert report.images == 70 and report.val_images == 7
    assert pools._start_method() == "fork"


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_signals_during_a_pooled_run_leave_the_old_output(tmp_path, fx, signum):
    import multiprocessing
    import signal

    from tlt_pipe.errors import Interrupted

    src = _many(fx, tmp_path / "voc", 80)
    out = tmp_path / "out"
    run("voc", src, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def signal_self(done, total):
        if total and done == 5:
            os.kill(os.getpid(), getattr(signal, signum))

    expected = KeyboardInterrupt if signum == "SIGINT" else Interrupted
    with pytest.raises(expected) as error:
        convert("voc", src, out, ConvertOptions(jobs=2, resize=(64, 48)), on_progress=signal_self)
    if signum == "SIGTERM":
        assert error.value.exit_code == 143
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "voc"]
    assert multiprocessing.active_children() == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the temporary handler is gone


def test_voc_in_gbk_big5_or_an_unknown_encoding_is_read_or_reported_by_file(tmp_path, fx):
    """Chinese datasets declare GBK or Big5: those are decoded; an unknown encoding skips that file, naming it."""
    src = tmp_path / "voc"
    for stem, encoding, name in (("g1", "GBK", "车牌"), ("b1", "Big5", "車牌"), ("u1", "x-no-such", "lpd")):
        fx.write_image(src / "JPEGImages" / f"{stem}.jpg", (500, 400))
        xml = fx.VOC_XML.format(stem=stem, objects=fx.voc_object(name, (1, 1, 100, 50)))
        xml = xml.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
        (src / "Annotations").mkdir(parents=True, exist_ok=True)
        (src / "Annotations" / f"{stem}.xml").write_bytes(xml.encode("utf-8" if encoding == "x-no-such" else encoding))
    out = tmp_path / "out"
    report = run("voc", src, out, val_split=0, classes={"车牌": "lpd", "車牌": "lpd", "lpd": "lpd"})
    assert fx.read_output(out) == {"g1": ("train", [lpd(0, 0, 99, 49, "lpd")]), "b1": ("train", [lpd(0, 0, 99, 49, "lpd")])}
    [(reason, drops)] = report.dropped.items()
    assert drops.examples[0].endswith("Annotations/u1.xml:1: unknown encoding 'x-no-such'")


def test_voc_entity_declarations_are_refused_not_expanded(tmp_path, fx):
    from tlt_pipe.datasets.voc import parse_voc

    bomb = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b"<annotation><object><name>&b;</name></object></annotation>")
    objects, [problem] = parse_voc(bomb)
    assert objects == [] and "EntitiesForbidden" in problem.detail


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF"])
def test_gif_webp_or_tiff_data_in_a_jpg_file_is_reported_not_linked(tmp_path, fx, fmt):
    from PIL import Image

    src = fx.build_kitti(tmp_path / "kitti")
    image = src / "image_2" / "000001.jpg"
    (src / "image_2" / "000001.png").unlink()
    Image.new("RGB", (620, 180), "red").save(image, format=fmt)  # named .jpg, holding another format
    out = tmp_path / "out"
    report = run("kitti", src, out, val_split=0)
    unreadable = report.dropped["unreadable image"]
    assert f"{fmt} data in .jpg file; TAO reads JPEG, PNG or BMP" in unreadable.examples[0]
    assert "000001" not in fx.read_output(out) and "000002" in fx.read_output(out)


@pytest.mark.parametrize("fmt", ["kitti", "yolo", "voc"])
def test_a_symlink_loop_or_broken_link_in_a_folder_drops_only_itself(tmp_path, fx, fmt):
    import os

    src = {"kitti": fx.build_kitti, "yolo": fx.build_yolo, "voc": fx.build_voc}[fmt](tmp_path / fmt)
    before = run(fmt, src, tmp_path / "before", val_split=0).images
    folders = sorted({p.parent for p in src.rglob("*") if p.is_file() and p.suffix.lower() in (".png", ".jpg")})
    for folder in folders:
        os.symlink(folder / "loop.jpg", folder / "loop.jpg")  # ELOOP when looked at
        os.symlink(folder / "gone.jpg", folder / "broken.jpg")
        os.symlink(folder.parent, folder / "up")  # a folder link back up the tree
    report = run(fmt, src, tmp_path / "after", val_split=0)
    assert report.images == before > 0


def test_a_broken_image_link_with_a_label_is_counted_and_named(tmp_path, fx):
    src = fx.build_kitti(tmp_path / "kitti")
    (src / "image_2" / "000003.png").symlink_to(tmp_path / "gone.png")  # once left out without a word
    (src / "label_2" / "000003.txt").write_text("Car 0.00 0 0.00 1 2 30 40 0 0 0 0 0 0 0\n")
    (src / "label_2" / "000004.txt").symlink_to(tmp_path / "gone.txt")
    fx.write_image(src / "image_2" / "000004.png", (620, 180), "PNG")
    report = run("kitti", src, tmp_path / "out", val_split=0)
    assert report.dropped["missing image"].examples[0].startswith(f"{src / 'image_2' / '000003.png'}: ")
    assert report.dropped["unparsable label file"].examples[0].startswith(f"{src / 'label_2' / '000004.txt'}: ")
    assert set(fx.read_output(tmp_path / "out")) == {"000001", "000002"}


def _unlistable(monkeypatch, folder: Path) -> None:
    """os.scandir fails for folder (no permission), as it would for another user: root lists every folder."""
    real = os.scandir
    blocked = folder.resolve()

    def scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and Path(path).resolve() == blocked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("fmt, folder", [
    ("kitti", "."), ("kitti", "image_2"), ("kitti", "label_2"), ("voc", "Annotations"), ("voc", "JPEGImages"),
    ("crpd", "."), ("crpd", "CRPD_single/train/images"), ("crpd", "CRPD_single/train/labels"), ("yolo", "."),
    ("yolo", "images/train"), ("yolo", "labels"), ("openalpr", "."), ("ccpd", "."), ("ccpd", "ccpd_base"),
])
def test_a_source_folder_that_cannot_be_listed_is_one_line_naming_it(tmp_path, fx, monkeypatch, fmt, folder):
    src = getattr(fx, f"build_{fmt}")(tmp_path / fmt)
    _unlistable(monkeypatch, src / folder)
    with pytest.raises(InputError) as info:
        run(fmt, src, tmp_path / "out", val_split=0)
    assert str(info.value) == f"{(src / folder).resolve()}: cannot list this folder: Permission denied"
    assert info.value.exit_code == 2 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt, folder", [("yolo", "notes"), ("openalpr", "benchmarks/endtoend/eu"),
                                         ("crpd", "lost+found")])
def test_a_nested_folder_that_cannot_be_listed_is_left_out_and_reported(tmp_path, fx, monkeypatch, fmt, folder):
    src = getattr(fx, f"build_{fmt}")(tmp_path / fmt)
    (src / folder).mkdir(exist_ok=True)
    before = run(fmt, src, tmp_path / "before", val_split=0)
    _unlistable(monkeypatch, src / folder)
    report = run(fmt, src, tmp_path / "after", val_split=0)
    left_out = 2 if folder.endswith("/eu") else 0  # wagen.jpg and bad.jpg
    assert report.images == before.images - left_out > 0
    tally = report.dropped["folder that cannot be listed"]
    assert tally.count == 1 and tally.examples == [f"{src}/{folder}: cannot list this folder: Permission denied"]
    message = f"{src}/{folder}: cannot list this folder: Permission denied"
    with pytest.raises(InputError) as info:
        run(fmt, src, tmp_path / "strict", val_split=0, strict=True)
    assert str(info.value) == message
    with pytest.raises(InputError) as info:  # a subset or region --subsets names is one the user expects
        run(fmt, src, tmp_path / "named", val_split=0, subsets=[Path(folder).name])
    assert str(info.value) == message
