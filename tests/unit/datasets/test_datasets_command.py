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
