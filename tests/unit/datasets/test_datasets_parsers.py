"""Pure pieces: label parsers, the KITTI writer, names, options, the split."""

from __future__ import annotations

import pytest

from tlt_pipe.datasets import kitti
from tlt_pipe.datasets.ccpd import parse_ccpd_name, plate_text
from tlt_pipe.datasets.crpd import parse_crpd
from tlt_pipe.datasets.naming import UniqueStems, output_stem, safe
from tlt_pipe.datasets.openalpr import parse_openalpr
from tlt_pipe.datasets.options import ConvertOptions, parse_classes, parse_resize
from tlt_pipe.datasets.split import StratifiedSplitter
from tlt_pipe.datasets.voc import format_voc, parse_voc
from tlt_pipe.datasets.yolo import load_names, parse_yolo
from tlt_pipe.errors import ConfigError


def boxes(objects):
    return [(o.cls, o.x1, o.y1, o.x2, o.y2) for o in objects]


# -- CRPD ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "10 20 110 20 110 50 10 50 0 京A12345",  # TL TR BR BL
        "110 50 10 50 10 20 110 20 0 京A12345",  # BR BL TL TR
        "10 50 110 50 110 20 10 20 0 京A12345",  # BL BR TR TL
        "10,20,110,20,110,50,10,50,0,京A12345",  # commas
        "10, 20, 110, 20, 110, 50, 10, 50, 0, 京A12345",
        "\ufeff10\t20\t110\t20\t110\t50\t10\t50\t0\t京A12345\r",
    ],
)
def test_crpd_corner_orders_and_separators(line):
    objects, problems = parse_crpd(line)
    assert problems == []
    assert boxes(objects) == [("lpd", 10, 20, 110, 50)]
    assert objects[0].plate["text"] == "京A12345" and objects[0].plate["type"] == 0


def test_crpd_skewed_quadrilateral_takes_min_max():
    [obj], _ = parse_crpd("12 30 95.5 22 99 47 14.5 55 1 X")
    assert (obj.x1, obj.y1, obj.x2, obj.y2) == (12, 22, 99, 55)


def test_crpd_optional_fields_and_empty_files():
    assert parse_crpd("") == ([], [])
    assert parse_crpd("\n \n") == ([], [])
    [nine], _ = parse_crpd("1 2 3 4 5 6 7 8 2")
    assert nine.plate["type"] == 2 and nine.plate["text"] is None
    [eight], _ = parse_crpd("1 2 3 4 5 6 7 8")
    assert eight.plate["type"] is None


def test_crpd_problems_name_the_line():
    objects, problems = parse_crpd("1 2 3\n1 2 3 4 abc 6 7 8 0 X\n1 2 3 4 5 6 7 8 blue X\n1 2 3 4 nan 6 7 8 0\n"
                                   "1 2 3 4 5 6 7 8 0 OK\n1 2 3 4 5 6 7 8 7 X\n1 2 3 4 5 6 7 8 -1 X")
    assert [(p.line, p.reason, p.detail) for p in problems] == [
        (1, "malformed line", "expected 8 corner numbers, got 3 fields"),
        (2, "non-numeric field", "expected 8 corner numbers, got 'abc'"),
        (3, "non-numeric field", "expected a plate type 0-3, got 'blue'"),
        (4, "non-numeric field", "expected 8 corner numbers, got 'nan'"),
        (6, "malformed line", "expected a plate type 0-3, got '7'"),  # once kept, type 7 in plates.jsonl
        (7, "malformed line", "expected a plate type 0-3, got '-1'"),
    ]
    assert [o.line for o in objects] == [5]


# -- CCPD ---------------------------------------------------------------------------------


def test_ccpd_example_from_the_dataset_description():
    obj = parse_ccpd_name("025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15")
    assert (obj.x1, obj.y1, obj.x2, obj.y2) == (154, 383, 386, 473)
    assert obj.plate["text"] == "皖AY339S"
    assert obj.plate["vertices"] == [[386, 473], [177, 454], [154, 383], [363, 402]]
    assert obj.plate["tilt"] == [95, 113] and obj.plate["brightness"] == 37 and obj.plate["blur"] == 15


def test_ccpd_no_plate_and_partial_names():
    assert parse_ccpd_name("1005") is None
    assert parse_ccpd_name("a-b-c-d-e-f-g") is None
    assert parse_ccpd_name("025-95_113-154&383-x-y-1-2") is None  # one corner only
    partial = parse_ccpd_name("025-95_113-154&383_386&473-garbage-0_0_x-37-15")
    assert (partial.x1, partial.x2) == (154, 386)
    assert partial.plate["vertices"] is None and partial.plate["text"] is None
    assert parse_ccpd_name("025-95_113-nan&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15") is None
    inf_vertex = parse_ccpd_name("025-95_113-154&383_386&473-inf&473_177&454_154&383_363&402-0-37-15")
    assert inf_vertex.plate["vertices"] is None  # never NaN or Infinity into plates.jsonl (not JSON)


def test_ccpd_plate_text_tables():
    assert plate_text([0, 0, 22, 27, 27, 33, 16]) == "皖AY339S"
    assert plate_text([12, 24, 33, 33, 33, 33, 33]) == "京99999"  # O (index 24) in position 2: no character
    assert plate_text([0, 0, 3, 24, 30, 32, 28, 26]) == "皖AD06842"  # green: 8 characters
    assert plate_text([34, 0, 0, 0, 0, 0, 0]) is None


# -- YOLO ---------------------------------------------------------------------------------


def test_yolo_uses_the_real_image_size():
    objects, problems = parse_yolo("0 0.5 0.5 0.25 0.2\n1 0.1 0.1 0.2 0.2 0.93\n", ("a", "b"), 400, 300)
    assert problems == []
    assert boxes(objects) == [("a", 150, 120, 250, 180), ("b", 0, 0, 80, 60)]
    polygon, _ = parse_yolo("0 0.1 0.2 0.3 0.2 0.3 0.4 0.1 0.4", ("a",), 100, 100)
    assert boxes(polygon) == [("a", pytest.approx(10), pytest.approx(20), pytest.approx(30), pytest.approx(40))]


def test_yolo_problems():
    _, problems = parse_yolo("2 0.5 0.5 0.1 0.1\n0.5 0.5 0.5 0.1 0.1\n0 0.5 x 0.1 0.1\n0 1 2\n0 .1 .2 .3 .4 .5 .6 .7", ("a", "b"), 10, 10)
    assert [(p.line, p.reason) for p in problems] == [
        (1, "unknown class"), (2, "non-numeric field"), (3, "non-numeric field"), (4, "malformed line"),
        (5, "malformed line"),
    ]
    assert problems[0].value == "id 2"


def test_yolo_names(tmp_path):
    (tmp_path / "obj.names").write_text("Mask\nNo Mask\n\n")
    assert load_names(tmp_path / "obj.names") == ("Mask", "No Mask")
    (tmp_path / "data.yaml").write_text("names: [cat, dog]\nnc: 2\n")
    assert load_names(tmp_path / "data.yaml") == ("cat", "dog")
    (tmp_path / "d2.yaml").write_text("names:\n  1: dog\n  0: cat\n")
    assert load_names(tmp_path / "d2.yaml") == ("cat", "dog")
    (tmp_path / "bad.names").write_text("a\n\nb\n")
    with pytest.raises(ConfigError, match="blank"):
        load_names(tmp_path / "bad.names")


@pytest.mark.parametrize("text, message", [
    ('names: {"-0": a}', "names: expected ids 0..0"),  # once a KeyError
    ("names: {0.5: a}", "names: expected ids 0..0"),  # once a KeyError
    ('names: {0: a, "00": b}', "names: expected ids 0..1"),
    ("names: [a, null]", "names: class 1 is None, not a class name (YAML reads yes, no, on, off and null so"),
    ("names: [yes, no]", "names: class 0 is True, not a class name (YAML reads"),  # once the class "True"
    ("names: ['', a]", "names: class 0 is '', not a class name"),  # once an empty KITTI class
    ("names: [[a, b]]", "names: class 0 is ['a', 'b'], not a class name"),  # once the class "['a', 'b']"
    ('names: ["ca\\x1br"]', "names: class 'ca\\x1br' has a control character"),  # once written into labels.txt
])
def test_yolo_data_yaml_names_that_are_no_class_names_are_one_line(tmp_path, text, message):
    (tmp_path / "data.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_names(tmp_path / "data.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'data.yaml'}: {message}")
    (tmp_path / "ok.yaml").write_text('names: {0: "yes", "1": 7}\n')
    assert load_names(tmp_path / "ok.yaml") == ("yes", "7")


# -- VOC, OpenALPR, KITTI -----------------------------------------------------------------


def test_voc_is_one_based():
    xml = b"<annotation><object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10.5</xmax><ymax>20</ymax></bndbox></object></annotation>"
    [obj], problems = parse_voc(xml)
    assert problems == [] and (obj.cls, obj.x1, obj.y1, obj.x2, obj.y2, obj.occlusion) == ("dog", 0, 0, 9.5, 19, 1)


def test_voc_writer_reads_back():
    text = format_voc("a&b.jpg", (100, 80), [("Dog <1>", 0, 0, 99, 79, 1), ("cat", -3, 5.4, 120, 60, 0)])
    objects, problems = parse_voc(text.encode())
    assert problems == []
    assert boxes(objects) == [("Dog <1>", 0, 0, 99, 79), ("cat", 0, 5, 99, 60)]  # clamped to 1..W when written
    assert objects[0].occlusion == 1 and "<filename>a&amp;b.jpg</filename>" in text


def test_openalpr_line():
    [obj], problems = parse_openalpr("car1.jpg\t100\t200\t50\t20\tABC 123\n")
    assert problems == [] and boxes([obj]) == [("lpd", 100, 200, 150, 220)] and obj.plate["text"] == "ABC 123"
    [obj], _ = parse_openalpr("car1.jpg 1 2 3 4 XY")  # spaces instead of tabs
    assert boxes([obj]) == [("lpd", 1, 2, 4, 6)]
    _, problems = parse_openalpr("car1.jpg\t1\t2")
    assert problems[0].reason == "malformed line"


def test_kitti_line_format():
    line = kitti.format_line("No Mask", 1.234, 5.678, 100, 50.5, occlusion=1)
    assert line == "no_mask 0.00 1 0.00 1.23 5.68 100.00 50.50 0.00 0.00 0.00 0.00 0.00 0.00 0.00"
    [obj], problems = kitti.parse_kitti(line + "\n")
    assert problems == [] and (obj.cls, obj.x1, obj.x2, obj.occlusion) == ("no_mask", 1.23, 100, 1)


def test_kitti_truncation_and_occlusion_outside_their_ranges_are_malformed():
    rest = "0.00 1 2 30 40 0 0 0 0 0 0 0"
    text = f"car 0.5 2 {rest}\nDontCare -1 -1 {rest}\ncar 0 1e300 {rest}\ncar 1e300 0 {rest}\ncar 0 4 {rest}\n"
    objects, problems = kitti.parse_kitti(text)
    assert [o.line for o in objects] == [1, 2]  # KITTI writes -1 for a DontCare region's
    assert [(p.line, p.reason) for p in problems] == [(3, "malformed line"), (4, "malformed line"), (5, "malformed line")]
    assert problems[0].detail == "truncation 0 or occlusion 1e300 outside KITTI's -1..1 and -1..3"  # once 300 digits


def test_kitti_clamp_and_degenerate():
    assert kitti.clamp((-5, 2, 30, 50), 20, 40) == ((0, 2, 20, 40), True)
    assert kitti.clamp((1, 2, 3, 4), 20, 40) == ((1, 2, 3, 4), False)
    assert kitti.degenerate((10.2, 0, 10.9, 5))  # int(x1) == int(x2): TAO drops it
    assert kitti.degenerate((0, 3, 5, 3.5))
    assert not kitti.degenerate((10.9, 0, 11.1, 5))
    assert kitti.degenerate((20, 0, 20, 40))  # clamped off the right edge


# -- names and options --------------------------------------------------------------------


def test_output_names():
    assert safe("025-95&383 京A") == "025-95_383_A"
    a = output_stem("CRPD_single/train/images/52_0278.jpg", "single", "train", "52_0278")
    b = output_stem("CRPD_double/train/images/52_0278.jpg", "double", "train", "52_0278")
    assert a.endswith("_single_train_52_0278") and b.endswith("_double_train_52_0278") and len(a.split("_")[0]) == 6
    assert a == output_stem("CRPD_single/train/images/52_0278.jpg", "single", "train", "52_0278")
    stems = UniqueStems()
    assert [stems.take("x"), stems.take("x"), stems.take("x")] == ["x", "x-2", "x-3"]


def test_option_parsing(tmp_path):
    assert parse_resize("960x544") == (960, 544)
    with pytest.raises(ConfigError):
        parse_resize("960")
    assert parse_classes("mask=Mask, none=No-Mask") == {"mask": "Mask", "none": "No-Mask"}
    assert parse_classes("car,bus") == {"car": "car", "bus": "bus"}
    (tmp_path / "map.yaml").write_text("classes:\n  mask: Mask\n  none: No-Mask\n")
    assert parse_classes(str(tmp_path / "map.yaml")) == {"mask": "Mask", "none": "No-Mask"}
    (tmp_path / "map.json").write_text('{"Car": "vehicle"}')
    assert ConvertOptions(classes=parse_classes(str(tmp_path / "map.json"))).classes == {"car": "vehicle"}
    with pytest.raises(ConfigError):
        parse_classes("=x")
    options = ConvertOptions(resize=[960, 544], subsets="CRPD_single", jobs=2)
    assert options.resize == (960, 544) and options.subsets == ("single",) and options.workers == 2
    for bad in (dict(val_split=100), dict(resize_mode="crop"), dict(to="tfrecords"), dict(jobs=0), dict(classes={})):
        with pytest.raises(ConfigError):
            ConvertOptions(**bad)


# -- split --------------------------------------------------------------------------------


def test_split_rare_classes_land_in_both_folds():
    splitter = StratifiedSplitter(10, seed=0)
    folds = {}
    for i in range(200):
        classes = {"common"} | ({"rare"} if i in (17, 150) else set())
        folds[i] = splitter.assign(classes)
    assert {folds[17], folds[150]} == {"train", "val"}
    assert 17 <= sum(f == "val" for f in folds.values()) <= 23


def test_split_zero_percent_and_empty_images():
    splitter = StratifiedSplitter(0)
    assert {splitter.assign(["a"]) for _ in range(50)} == {"train"}
    splitter = StratifiedSplitter(50, seed=1)
    assert sorted(splitter.assign([]) for _ in range(10)).count("val") == 5
