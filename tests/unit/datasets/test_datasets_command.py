"""`tltpipe convert` through click's test runner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tlt_pipe.datasets.command import convert
from tlt_pipe.datasets.sample import sample_crpd


def invoke(*args):
    return CliRunner().invoke(convert, [str(a) for a in args])


def test_convert_prints_the_summary(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    result = invoke("crpd", src, tmp_path / "out", "--val-split", "20", "--jobs", "1", "--classes", "lpd=plate")
    assert result.exit_code == 0, result.output
    assert "crpd -> kitti: 10 images" in result.output
    assert "objects: plate 11" in result.output
    assert "dropped, unreadable image: 2" in result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["objects_per_class"] == {"plate": 11}


def test_missing_source_is_one_line_exit_2(tmp_path):
    result = invoke("crpd", tmp_path / "nope", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {tmp_path / 'nope'}: no such directory"]


def test_strict_names_file_and_line(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    result = invoke("crpd", src, tmp_path / "out", "--strict", "--jobs", "1")
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    # the scan finds the label without an image first
    assert line == f"Error: {src}/CRPD_single/train/labels/52_9999.txt: label file without an image"
    assert not (tmp_path / "out").exists()
    (src / "CRPD_single/train/labels/52_9999.txt").unlink()
    # then the first bad line or image in processing order (fixed by the seed)
    result = invoke("crpd", src, tmp_path / "out", "--strict", "--jobs", "1", "--seed", "2")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {src}/CRPD_single/train/labels/52_0283.txt:1: expected 8 corner numbers, got 3 fields\n"
    )
    result = invoke("crpd", src, tmp_path / "out", "--strict", "--jobs", "1", "--seed", "1")
    assert result.output == f"Error: {src}/CRPD_single/train/images/52_0286.jpg: unreadable image: not an image Pillow can read\n"


def test_bad_options_are_one_line_exit_2(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    for args in (["--resize", "960x540"], ["--resize", "big"], ["--classes", "=x"], ["--resize", "65536x65536"]):
        result = invoke("crpd", src, tmp_path / "out", *args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    result = invoke("yolo", src, tmp_path / "out", "--names", tmp_path / "missing.names")
    assert result.exit_code == 2 and "missing.names: no such file" in result.output
    (tmp_path / "gbk.names").write_bytes("车牌\n".encode("gbk"))
    (tmp_path / "gbk.yaml").write_bytes("lpd: 车牌\n".encode("gbk"))
    for fmt, args in (("yolo", ["--names", tmp_path / "gbk.names"]), ("crpd", ["--classes", tmp_path / "gbk.yaml"])):
        result = invoke(fmt, src, tmp_path / "out", *args)
        assert result.exit_code == 2 and "not UTF-8 text" in result.output and "Traceback" not in result.output, args


def test_sample_data_converts_with_resize_subsets_and_voc(tmp_path):
    sample_crpd(tmp_path / "sample", 30, seed=1)
    result = invoke("crpd", tmp_path / "sample", tmp_path / "out", "--resize", "320x192", "--subsets", "single,double",
                    "--resize-mode", "letterbox", "--jobs", "2")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == 24 and report["dropped"] == {} and report["resize"] == [320, 192]
    assert report["val_images"] >= 1
    result = invoke("crpd", tmp_path / "sample", tmp_path / "ssd", "--to", "voc", "-q")
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "ssd" / "labels.txt").read_text() == "lpd\n"


def test_sample_is_deterministic_and_valid(tmp_path, fx):
    sample_crpd(tmp_path / "a", 12, seed=5)
    sample_crpd(tmp_path / "b", 12, seed=5)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.txt"))
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.txt"))
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert {p.parent.parent.parent.name for p in files_a} == {"CRPD_single", "CRPD_double", "CRPD_multi"}
    result = invoke("crpd", tmp_path / "a", tmp_path / "out", "--strict", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert fx.assert_valid_kitti(tmp_path / "out") >= 12


def test_a_source_that_cannot_be_listed_is_one_line_exit_2(tmp_path, fx, monkeypatch):
    import os

    src = fx.build_kitti(tmp_path / "kitti")
    real = os.scandir

    def scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == str(src / "label_2"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = invoke("kitti", src, tmp_path / "out", "--jobs", "1")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"Error: {src}/label_2: cannot list this folder: Permission denied"]


def test_a_class_map_path_that_is_missing_or_a_fifo_is_an_error_not_a_class(tmp_path, fx):
    import os

    src = fx.build_crpd(tmp_path / "crpd")
    missing = invoke("crpd", src, tmp_path / "out", "--classes", tmp_path / "classes.yml")
    assert missing.exit_code == 2 and "classes.yml: cannot read class map: No such file" in missing.output
    os.mkfifo(tmp_path / "fifo.yml")  # once used as the class name "fifo.yml": every plate dropped, exit 0
    fifo = invoke("crpd", src, tmp_path / "out", "--classes", tmp_path / "fifo.yml")
    assert fifo.exit_code == 2 and fifo.output.strip() == f"Error: {tmp_path / 'fifo.yml'}: a FIFO, not a file"
    names = invoke("yolo", fx.build_yolo(tmp_path / "yolo"), tmp_path / "out", "--names", tmp_path / "fifo.yml")
    assert names.exit_code == 2 and names.output.strip() == f"Error: {tmp_path / 'fifo.yml'}: a FIFO, not a file"
    assert not (tmp_path / "out").exists()


def test_a_class_map_that_keeps_no_object_writes_nothing(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    result = invoke("crpd", src, tmp_path / "out", "--classes", "car", "--jobs", "1")
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "every object has a class the class map leaves out (the dataset has: lpd (" in line
    assert line.endswith(f"the class map keeps: car); nothing was written to {tmp_path / 'out'}")
    assert not (tmp_path / "out").exists()


def test_an_output_below_a_file_is_one_line_exit_2(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    (tmp_path / "afile").write_text("mine\n")
    result = invoke("crpd", src, tmp_path / "afile" / "out", "--jobs", "1")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path / 'afile' / 'out'}: cannot create the output: {tmp_path / 'afile'} is a file, not a folder"
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_a_class_name_with_a_control_character_is_dropped_and_named(tmp_path, fx):
    src = fx.build_kitti(tmp_path / "kitti")
    label = next(iter(sorted((src / "label_2").iterdir())))
    label.write_text("ca\x1br 0 0 0 1 1 50 50 0 0 0 0 0 0 0\n" + label.read_text())
    result = invoke("kitti", src, tmp_path / "out", "--to", "voc", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert f"dropped, class name with a control character: 1 (e.g. {label}:1: class 'ca\\x1br')" in result.output
    labels = (tmp_path / "out" / "labels.txt").read_text()
    assert labels.isprintable() or all(line.isprintable() for line in labels.splitlines())
    assert "\x1b" not in labels and all("\x1b" not in p.read_text() for p in (tmp_path / "out").rglob("*.xml"))
    strict = invoke("kitti", src, tmp_path / "strict", "--strict", "--jobs", "1")
    assert strict.exit_code == 2 and f"{label}:1: class 'ca\\x1br'" in strict.output
    bad_map = invoke("kitti", src, tmp_path / "map", "--classes", "c\x07ar=car")
    assert bad_map.exit_code == 2 and "classes: class 'c\\x07ar' has a control character" in bad_map.output


def test_utf16_label_files_keep_their_objects(tmp_path, fx):
    src = fx.build_kitti(tmp_path / "kitti")
    line = "Car 0.00 0 0.00 10 20 110 80 1.5 1.6 3.9 1.0 1.0 10.0 0.1\n"
    fx.write_text(src / "label_2" / "000001.txt", line, encoding="utf-16")  # with its BOM, as Windows tools save it
    fx.write_text(src / "label_2" / "000002.txt", line.replace("Car", "Van"), encoding="utf-16-le")  # without one
    result = invoke("kitti", src, tmp_path / "out", "--jobs", "1")  # once: read as GB18030, every object lost
    assert result.exit_code == 0, result.output
    assert fx.load_report(tmp_path / "out")["objects_per_class"] == {"car": 1, "van": 1}
    assert fx.assert_valid_kitti(tmp_path / "out") == 2


def test_a_class_map_file_with_a_yaml_boolean_or_null_name_says_to_quote_it(tmp_path, fx):
    src = fx.build_crpd(tmp_path / "crpd")
    for text in ("yes: car\nlpd: plate\n", "- lpd\n- no\n", "lpd: ~\n"):  # once the class "True", "False", "None"
        (tmp_path / "map.yaml").write_text(text)
        result = invoke("crpd", src, tmp_path / "out", "--classes", tmp_path / "map.yaml")
        assert result.exit_code == 2 and "YAML reads yes, no, on, off, true, false and null so; quote the name" in \
            result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_unicode_line_break_inside_a_class_name_shifts_no_class(tmp_path, fx):
    src = fx.build_yolo(tmp_path / "yolo")
    (src / "data.yaml").unlink()
    names = fx.write_text(src / "obj.names", "mask\nno\u0085mask\n")  # once 3 names: mask, no, mask
    result = invoke("yolo", src, tmp_path / "out", "--names", names, "--jobs", "1")
    assert result.exit_code == 2 and "class 'no\\x85mask' has a control character" in result.output, result.output
    kitti = fx.build_kitti(tmp_path / "kitti")
    label = kitti / "label_2" / "000001.txt"
    label.write_text("l\u0085d 0.00 0 0.00 1 2 30 40 0 0 0 0 0 0 0\n" + label.read_text())  # once the class "d"
    assert invoke("kitti", kitti, tmp_path / "k", "--jobs", "1").exit_code == 0
    report = fx.load_report(tmp_path / "k")
    assert not {"d", "l", "l\u0085d"} & set(report["objects_per_class"])
    assert report["dropped"]["class name with a control character"]["count"] == 1


def test_a_fifo_or_device_among_the_labels_or_images_is_named_not_a_background_image(tmp_path, fx):
    import os

    src = fx.build_yolo(tmp_path / "yolo")
    label = src / "labels" / "train" / "a.txt"
    label.unlink()
    os.mkfifo(label)  # once: taken for a missing label, so a.jpg became a background image, exit 0
    (src / "labels" / "train" / "b.txt").unlink()
    (src / "labels" / "train" / "b.txt").symlink_to("/dev/zero")
    result = invoke("yolo", src, tmp_path / "out", "--jobs", "1")
    assert result.exit_code == 0, result.output
    unparsable = fx.load_report(tmp_path / "out")["dropped"]["unparsable label file"]
    assert unparsable["count"] == 2 and all("not a regular file" in e for e in unparsable["examples"])
    kitti = fx.build_kitti(tmp_path / "kitti")
    os.mkfifo(kitti / "image_2" / "000003.png")
    fx.write_text(kitti / "label_2" / "000003.txt", "Car 0.00 0 0.00 1 2 30 40 0 0 0 0 0 0 0\n")
    assert invoke("kitti", kitti, tmp_path / "k", "--jobs", "1").exit_code == 0  # no wait on the FIFO
    unreadable = fx.load_report(tmp_path / "k")["dropped"]["unreadable image"]
    assert any("000003.png" in e and "not a regular file" in e for e in unreadable["examples"])


def test_a_stray_nul_byte_does_not_make_a_label_file_utf16(tmp_path, fx):
    src = fx.build_kitti(tmp_path / "kitti")
    label = src / "label_2" / "000001.txt"
    text = "Car 0.00 0 0.00 10 20 110 80 1.5 1.6 3.9 1.0 1.0 10.0 0.1\n"
    label.write_bytes((text + "\0" + " " * (len(text) % 2)).encode())  # even length, one NUL
    assert invoke("kitti", src, tmp_path / "out", "--jobs", "1").exit_code == 0
    _, lines = fx.read_output(tmp_path / "out")["000001"]
    assert [line.split()[0] for line in lines] == ["car"]  # once decoded as UTF-16: the whole file dropped
