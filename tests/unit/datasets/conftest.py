"""Small, realistic source datasets for the converter tests, nasty cases included."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

CCPD_EXAMPLE = "025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15"
CCPD_OTHER = "01-86_91-298&341_449&414-458&394_308&410_304&357_454&341-0_0_14_28_24_26_29-124-24"
CCPD_GREEN = "0136360677083-95_103-255&434_432&512-432&512_268&494_255&434_419&452-0_0_3_24_30_32_28_26-130-18"

_ENCODED: dict[tuple, bytes] = {}


def image_bytes(size: tuple[int, int], fmt: str = "JPEG", colour=(90, 120, 150)) -> bytes:
    key = (size, fmt, colour)
    if key not in _ENCODED:
        buffer = io.BytesIO()
        Image.new("RGB", size, colour).save(buffer, fmt)
        _ENCODED[key] = buffer.getvalue()
    return _ENCODED[key]


def write_image(path: Path, size=(640, 360), fmt: str = "JPEG", colour=(90, 120, 150)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(size, fmt, colour))
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def build_crpd(root: Path) -> Path:
    """CRPD with every oddity the format allows and a few it does not."""
    single = root / "CRPD_single"
    t = single / "train"
    labels = {
        # corners TL, TR, BR, BL; spaces
        "52_0278": "10 20 110 20 110 50 10 50 0 京A12345\n",
        # BOM, commas, CRLF, corners starting bottom-right
        "52_0279": "\ufeff110,50,10,50,10,20,110,20,1,沪B67890\r\n",
        # 9 fields: no plate text
        "52_0280": "300 100 400 100 400 140 300 140 2\n",
        # empty file: an image without plates
        "52_0281": "",
        # partly outside the 640x360 frame: clamped
        "52_0282": "600 300 700 300 700 380 600 380 0 粤C1\n",
        # a malformed line, a non-numeric one, then a good one (float corners, skewed)
        "52_0283": "1 2 3\n10 20 abc 20 110 50 10 50 0 X\n\n20.5 30 60 32.25 61 50 19.75 48 3 Y\n",
        # collapses to nothing in whole pixels: dropped
        "52_0284": "10 10 10.5 10 10.5 30 10 30 0 Z\n",
        # fine label, truncated image
        "52_0285": "10 20 110 20 110 50 10 50 0 A\n",
        # fine label, not an image at all
        "52_0286": "10 20 110 20 110 50 10 50 0 B\n",
    }
    for stem, text in labels.items():
        write_text(t / "labels" / f"{stem}.txt", text)
        if stem not in ("52_0285", "52_0286"):
            write_image(t / "images" / f"{stem}.jpg")
    jpeg = image_bytes((640, 360))
    (t / "images" / "52_0285.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (t / "images" / "52_0286.jpg").write_bytes(b"hello, not a jpeg")
    write_text(t / "labels" / "52_9999.txt", "10 20 110 20 110 50 10 50 0 A\n")  # no image
    write_image(t / "images" / "52_8888.jpg")  # no label
    # the same stem in val, in another subset, and a held-out test image
    write_image(single / "val" / "images" / "52_0278.jpg")
    write_text(single / "val" / "labels" / "52_0278.txt", "200 200 260 200 260 220 200 220 0 京B1\n")
    write_image(single / "test" / "images" / "60_0001.jpg")
    write_text(single / "test" / "labels" / "60_0001.txt", "200 200 260 200 260 220 200 220 0 京B1\n")
    double = root / "CRPD_double" / "train"
    write_image(double / "images" / "52_0278.jpg")
    write_text(double / "labels" / "52_0278.txt", "10 20 110 20 110 50 10 50 0 A1\n400 20 500 20 500 50 400 50 1 B2\n")
    multi = root / "CRPD_multi" / "train"
    write_image(multi / "images" / "70_0001.jpg")
    write_text(
        multi / "labels" / "70_0001.txt",
        "50 60 10 60 10 40 50 40 0 A\n" "210 200 250 210 245 230 205 220 1\n" "400 300 450 300 450 320 400 320 3 W\n",
    )
    return root


def build_ccpd(root: Path, with_lists: bool = True) -> Path:
    write_image(root / "ccpd_base" / f"{CCPD_EXAMPLE}.jpg", (720, 1160))
    write_image(root / "ccpd_blur" / f"{CCPD_OTHER}.jpg", (720, 1160))
    # the same file in two subsets: converted once
    write_image(root / "ccpd_tilt" / f"{CCPD_EXAMPLE}.jpg", (720, 1160))
    write_image(root / "ccpd_np" / "1005.jpg", (720, 1160))
    write_image(root / "ccpd_weather" / "not-a-ccpd-name.jpg", (720, 1160))
    write_image(root / "ccpd_challenge" / f"9{CCPD_OTHER}.jpg", (720, 1160))
    if with_lists:
        write_text(root / "splits" / "train.txt", f"ccpd_base/{CCPD_EXAMPLE}.jpg\nccpd_tilt/{CCPD_EXAMPLE}.jpg\nccpd_weather/not-a-ccpd-name.jpg\n")
        write_text(root / "splits" / "val.txt", f"ccpd_blur/{CCPD_OTHER}.jpg\n")
        write_text(root / "splits" / "test.txt", f"ccpd_challenge/9{CCPD_OTHER}.jpg\n")
    return root


def build_ccpd_green(root: Path) -> Path:
    for n, split in enumerate(("train", "val", "test")):
        write_image(root / "ccpd_green" / split / f"{n}{CCPD_GREEN}.jpg", (720, 1160))
    return root


def build_yolo(root: Path) -> Path:
    write_text(root / "data.yaml", "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: Mask\n  1: No Mask\n")
    write_image(root / "images" / "train" / "a.jpg", (400, 300))
    write_text(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.25 0.2\n1 0.1 0.1 0.2 0.2\n")
    write_image(root / "images" / "train" / "b.jpg", (400, 300))
    write_text(root / "labels" / "train" / "b.txt", "5 0.5 0.5 0.1 0.1\n0 x 0.5 0.1 0.1\n0 0.5 0.5\n1 0.5 0.5 0.5 0.5\n")
    write_image(root / "images" / "train" / "c.jpg", (400, 300))  # no label file: background
    write_text(root / "labels" / "train" / "orphan.txt", "0 0.5 0.5 0.1 0.1\n")
    write_image(root / "images" / "val" / "d.png", (200, 100), "PNG")
    write_text(root / "labels" / "val" / "d.txt", "1 0.5 0.5 1.2 0.5\n")  # wider than the image: clamped
    write_image(root / "images" / "test" / "e.jpg", (400, 300))
    write_text(root / "labels" / "test" / "e.txt", "0 0.5 0.5 0.1 0.1\n")
    return root


VOC_XML = """<?xml version="1.0"?>
<annotation>
  <filename>{stem}.jpg</filename>
  <size><width>500</width><height>400</height><depth>3</depth></size>
{objects}</annotation>
"""


def voc_object(name, box, difficult=0) -> str:
    x1, y1, x2, y2 = box
    return (
        f"  <object>\n    <name>{name}</name>\n    <difficult>{difficult}</difficult>\n"
        f"    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>\n  </object>\n"
    )


def build_voc(root: Path) -> Path:
    ann, img = root / "Annotations", root / "JPEGImages"
    write_image(img / "m1.jpg", (500, 400))
    write_text(ann / "m1.xml", VOC_XML.format(stem="m1", objects=voc_object("mask", (1, 1, 100, 50))
                                              + voc_object("none", (201, 101, 300, 400), difficult=1)))
    write_image(img / "m2.jpg", (500, 400))
    write_text(ann / "m2.xml", VOC_XML.format(stem="m2", objects=(
        "  <object>\n    <name>mask</name>\n  </object>\n"  # line 5: no bndbox
        + voc_object("mask", (10, 10, "ten", 50))
        + voc_object("hat", (10, 10, 40, 50))
        + voc_object("mask", (11, 21, 41, 61)))))
    write_text(ann / "m3.xml", VOC_XML.format(stem="m3", objects=voc_object("mask", (1, 1, 10, 10))))  # no image
    write_image(img / "m4.jpg", (500, 400))
    write_text(ann / "m4.xml", "<annotation><object><name>mask</name>\n<bndbox></object></annotation>")  # bad XML
    write_image(img / "m5.jpg", (500, 400))  # no annotation
    return root


def build_openalpr(root: Path) -> Path:
    base = root / "benchmarks" / "endtoend"
    write_image(base / "us" / "car1.jpg", (640, 480))
    write_text(base / "us" / "car1.txt", "car1.jpg\t100\t200\t50\t20\tABC123\n")
    write_image(base / "eu" / "wagen.jpg", (800, 600))
    write_text(base / "eu" / "wagen.txt", "wagen.jpg\t780\t590\t40\t20\tB-XY-123\n")  # runs off the image
    write_image(base / "eu" / "bad.jpg", (800, 600))
    write_text(base / "eu" / "bad.txt", "bad.jpg\t10\tten\t40\t20\tX\n")
    write_text(base / "eu" / "lonely.txt", "lonely.jpg\t10\t10\t40\t20\tX\n")
    write_text(root / "README.txt", "not a label\n")
    return root


def build_kitti(root: Path) -> Path:
    def line(cls, box, occ="0", trunc="0.00"):
        return f"{cls} {trunc} {occ} 0.00 {box[0]} {box[1]} {box[2]} {box[3]} 1.5 1.6 3.9 1.0 1.0 10.0 0.1\n"

    write_image(root / "image_2" / "000001.png", (620, 180), "PNG")
    write_text(root / "label_2" / "000001.txt", line("Car", (10.5, 20, 110.25, 80), occ="1", trunc="0.30")
               + line("DontCare", (300, 30, 340, 60)) + line("Pedestrian", (400, 40, 430, 120)))
    write_image(root / "image_2" / "000002.png", (620, 180), "PNG")
    write_text(root / "label_2" / "000002.txt", "Car 0.0 0 0.0 1 2 3 4\n" + line("Car", (500, 100, 700, 200))
               + "Car 0.00 zero 0.00 1 2 3 4 1 1 1 1 1 1 1\n")
    return root


def read_output(out: Path) -> dict[str, tuple[str, list[str]]]:
    """Output labels keyed by stem without the hash prefix: (fold, lines)."""
    found = {}
    for fold in ("train", "val"):
        for path in sorted((out / fold / "labels").glob("*.txt")):
            key = path.stem.split("_", 1)[1]
            assert key not in found, f"two outputs for {key}"
            found[key] = (fold, path.read_text(encoding="utf-8").splitlines())
    return found


def assert_valid_kitti(out: Path) -> int:
    """Every image has a label and every label an image; every line is what TAO accepts."""
    lines = 0
    for fold in ("train", "val"):
        images = {p.stem: p for p in (out / fold / "images").iterdir()}
        labels = {p.stem: p for p in (out / fold / "labels").iterdir()}
        assert images.keys() == labels.keys()
        for stem, label in labels.items():
            with Image.open(images[stem]) as image:
                width, height = image.size
            for text in label.read_text(encoding="utf-8").splitlines():
                fields = text.split(" ")
                assert len(fields) == 15, text
                assert fields[0] == fields[0].lower() and fields[0]
                int(fields[2])  # occlusion must be an integer
                x1, y1, x2, y2 = map(float, fields[4:8])
                assert 0 <= x1 and x2 <= width and 0 <= y1 and y2 <= height, text
                assert int(x1) < int(x2) and int(y1) < int(y2), text
                lines += 1
    return lines


def load_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture
def fx():
    """The builders and checkers above (a fixture, so no test imports conftest)."""
    import types

    names = ["CCPD_EXAMPLE", "CCPD_OTHER", "CCPD_GREEN", "image_bytes", "write_image", "write_text",
             "build_crpd", "build_ccpd", "build_ccpd_green", "build_yolo", "build_voc", "voc_object", "VOC_XML",
             "build_openalpr", "build_kitti", "read_output", "assert_valid_kitti", "load_report"]
    return types.SimpleNamespace(**{n: globals()[n] for n in names})
