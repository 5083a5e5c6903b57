"""KITTI box sizes for anchors: the fast path agrees with the plain reading, errors name file:line."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tlt_pipe import label_boxes
from tlt_pipe.errors import InputError
from tlt_pipe.label_boxes import kitti_box_arrays, load_kitti_boxes

LINE = "car 0.00 0 0.00 {} {} {} {} 0.00 0.00 0.00 0.00 0.00 0.00 0.00\n"


def make_set(root, files: dict[str, str], size=(200, 100)):
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    for stem, text in files.items():
        (root / "labels" / f"{stem}.txt").write_bytes(text.encode() if isinstance(text, str) else text)
        Image.new("RGB", size).save(root / "images" / f"{stem}.jpg")
    return root / "labels", root / "images"


# Label text built from the pieces that matter: numbers plain and odd, words, every kind of
# whitespace and line break, and lines of 14, 15 and 16 fields.
token = st.sampled_from(["0", "1", "12.5", "-3", "+4.25", ".5", "7.", "1e2", "2E-1", "1_0", "0x10", "nan", "inf",
                         "-inf", "1e400", "1.2.3", "car", "--", "\xe9", "9" * 30])
gap = st.sampled_from([" ", "  ", "\t", "\x0b", "\x0c", " \t "])
line = st.builds(lambda fields, sep: sep.join(fields), st.lists(token, min_size=13, max_size=17), gap)
text = st.builds(lambda lines, ends: "".join(l + e for l, e in zip(lines, ends)),
                 st.lists(line, max_size=5), st.lists(st.sampled_from(["\n", "\r\n", "\r", "\n\n"]), min_size=5))


@settings(max_examples=300, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text)
def test_fast_path_gives_the_plain_reading_or_its_error(tmp_path_factory, content):
    labels, images = make_set(tmp_path_factory.mktemp("set"), {"a": content.encode("utf-8")})
    tasks = label_boxes._tasks([labels], [images])
    try:
        with label_boxes._Folders() as folders:
            expected = label_boxes._boxes_line_by_line(tasks[0], content.encode("utf-8"), folders)
    except InputError as error:
        with pytest.raises(InputError) as raised:
            label_boxes._read_run(tasks)
        assert str(raised.value) == str(error)
        return
    ws, hs = label_boxes._read_run(tasks)
    assert list(zip(ws.tolist(), hs.tolist())) == expected


def test_plain_files_take_the_fast_path(tmp_path, monkeypatch):
    labels, images = make_set(tmp_path, {"a": LINE.format(10, 10, 60, 30) + "short line\n" + LINE.format(0, 0, 100, 50)})
    monkeypatch.setattr(label_boxes, "_boxes_line_by_line", None)  # any use would fail
    assert load_kitti_boxes(labels, images, size_x=10, size_y=10) == [(0.25, 0.2), (0.5, 0.5)]


@pytest.mark.parametrize(("coordinates", "problem"), [(("inf", 0, 10, 10), "not finite"),
                                                       (("-1e308", 0, "1e308", 10), "not finite"),
                                                       ((0, "nan", 10, 10), "not finite"),
                                                       (("0x10", 0, 20, 10), "not numbers")])
def test_boxes_that_are_not_finite_numbers_name_the_line(tmp_path, coordinates, problem):
    labels, images = make_set(tmp_path, {"a": LINE.format(0, 0, 5, 5) + LINE.format(*coordinates)})
    with pytest.raises(InputError, match=rf"a\.txt:2: box coordinates are {problem}"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)


def test_symlink_loops_name_the_file(tmp_path):
    labels, images = make_set(tmp_path, {"a": LINE.format(0, 0, 5, 5)})
    loop = labels / "loop.txt"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match=r"loop\.txt: cannot read the label file \(Too many levels"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)
    loop.unlink()
    (images / "a.jpg").unlink()
    (images / "a.jpg").symlink_to(images / "a.jpg")
    with pytest.raises(InputError, match=r"a\.jpg: cannot read the image \(Too many levels"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)


def test_a_directory_named_like_a_label_file_holds_no_boxes(tmp_path):
    labels, images = make_set(tmp_path, {"a": LINE.format(0, 0, 50, 50)})
    (labels / "folder.txt").mkdir()
    assert load_kitti_boxes(labels, images, size_x=10, size_y=10) == [(0.25, 0.5)]


def many_files(root, count):
    files = {f"{i:05d}": "".join(LINE.format(i % 7, i % 5, 20 + i % 13 + j, 10 + i % 11 + j) for j in range(i % 4))
             for i in range(count)}
    return make_set(root, files, size=(64, 48))


def test_reading_in_parallel_gives_the_same_boxes_in_order(tmp_path, monkeypatch):
    labels, images = many_files(tmp_path, 120)
    alone = kitti_box_arrays(labels, images, size_x=10, size_y=10, workers=1)
    monkeypatch.setattr(label_boxes, "_PARALLEL_FROM", 10)
    together = kitti_box_arrays(labels, images, size_x=10, size_y=10, workers=2)
    assert len(alone[0]) == sum(i % 4 for i in range(120))
    assert np.array_equal(alone[0], together[0]) and np.array_equal(alone[1], together[1])


def test_an_error_in_a_worker_is_one_line_naming_the_file(tmp_path, monkeypatch):
    labels, images = many_files(tmp_path, 60)
    (labels / "00041.txt").write_text(LINE.format(0, 0, "x", 5))
    monkeypatch.setattr(label_boxes, "_PARALLEL_FROM", 10)
    with pytest.raises(InputError, match=r"00041\.txt:1: box coordinates are not numbers") as error:
        kitti_box_arrays(labels, images, size_x=10, size_y=10, workers=2)
    assert "\n" not in str(error.value)


def test_first_image_extension_in_name_order(tmp_path):
    labels, images = make_set(tmp_path, {"a": LINE.format(0, 0, 50, 50)}, size=(100, 100))
    Image.new("RGB", (50, 50)).save(images / "a.bmp")  # "a.bmp" sorts before "a.jpg"
    Image.new("RGB", (25, 25)).save(images / "a.png")
    assert load_kitti_boxes(labels, images, size_x=10, size_y=10) == [(1.0, 1.0)]
    os.remove(images / "a.bmp")
    assert load_kitti_boxes(labels, images, size_x=10, size_y=10) == [(0.5, 0.5)]


def test_a_fifo_or_device_among_the_labels_or_images_is_named_not_waited_on(tmp_path):
    labels, images = make_set(tmp_path, {"a": LINE.format(0, 0, 50, 50)})
    os.mkfifo(labels / "fifo.txt")  # no writer: opening it once waited forever
    with pytest.raises(InputError, match=r"fifo\.txt: not a regular file \(a FIFO, device or socket\)"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)
    (labels / "fifo.txt").unlink()
    (labels / "zero.txt").symlink_to("/dev/zero")  # endless: once read until memory ran out
    with pytest.raises(InputError, match=r"zero\.txt: not a regular file"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)
    (labels / "zero.txt").unlink()
    (images / "a.jpg").unlink()
    os.mkfifo(images / "a.jpg")
    with pytest.raises(InputError, match=r"a\.jpg: not a regular file"):
        load_kitti_boxes(labels, images, size_x=10, size_y=10)
