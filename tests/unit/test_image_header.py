"""Image sizes from header bytes: the same answer as Pillow, one-line errors otherwise."""

from __future__ import annotations

import struct
import time
import zlib

import pytest
from PIL import Image

from tlt_pipe.errors import InputError
from tlt_pipe.image_header import image_size


def pillow_size(path):
    with Image.open(path) as image:
        return image.size


@pytest.mark.parametrize(
    ("mode", "ext", "options"),
    [
        ("RGB", "jpg", {}),
        ("RGB", "jpg", {"progressive": True}),
        ("L", "jpg", {}),
        ("CMYK", "jpg", {}),
        ("RGB", "jpg", {"exif": b"Exif\0\0" + bytes(30_000)}),  # the frame header lies past the first block
        ("RGB", "jpg", {"icc_profile": bytes(9_000), "comment": b"x" * 5_000}),
        ("RGB", "png", {}),
        ("RGBA", "png", {}),
        ("RGB", "bmp", {}),
        ("P", "gif", {}),  # not read from the header here: Pillow answers
        ("RGB", "webp", {}),
    ],
)
def test_same_size_as_pillow(tmp_path, mode, ext, options):
    path = tmp_path / f"a.{ext}"
    Image.new(mode, (123, 45)).save(path, **options)
    assert image_size(path) == pillow_size(path) == (123, 45)


def test_jpeg_with_fill_bytes_before_a_marker(tmp_path):
    source = tmp_path / "a.jpg"
    Image.new("RGB", (64, 32)).save(source)
    data = source.read_bytes()
    padded = tmp_path / "b.jpg"
    padded.write_bytes(data[:2] + b"\xff\xff\xff" + data[2:])  # fill bytes may precede any marker
    assert image_size(padded) == (64, 32)


def bmp_header(info_size: int, width: int, height: int) -> bytes:
    info = struct.pack("<I", info_size)
    if info_size == 12:
        info += struct.pack("<HHHH", width, height, 1, 24)
    else:
        info += struct.pack("<iiHHIIiiII", width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
        info += bytes(info_size - len(info))
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def test_bmp_top_down_and_os2_headers(tmp_path):
    top_down = tmp_path / "a.bmp"
    top_down.write_bytes(bmp_header(40, 30, -20))  # negative height: rows stored top-down
    assert image_size(top_down) == (30, 20)
    os2 = tmp_path / "b.bmp"
    os2.write_bytes(bmp_header(12, 300, 200))
    assert image_size(os2) == (300, 200)


def png_header(width: int, height: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))


PNG_END = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (0xFFFFFFFF, 0xFFFFFFFF), (13_380, 13_380)])
def test_a_header_past_pillows_bomb_limit_is_refused_as_pillow_refuses_it(tmp_path, width, height):
    # Ten billion pixels, or 2^32-1 a side (once a size that made every box 0x0): refused, nothing decoded.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(width, height) + PNG_END)
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"bomb\.png: .*could be decompression bomb DOS attack") as error:
        image_size(path)
    assert time.perf_counter() - start < 1 and "\n" not in str(error.value)
    with pytest.raises(Image.DecompressionBombError):
        pillow_size(path)


def test_a_large_header_within_pillows_limit_is_read_without_pillow(tmp_path, monkeypatch):
    path = tmp_path / "large.png"
    path.write_bytes(png_header(13_370, 13_370))  # 178.8 million pixels: Pillow opens it
    monkeypatch.setattr(Image, "open", None)  # the header alone answers
    assert image_size(path) == (13_370, 13_370)


def test_a_decompression_bomb_left_to_pillow_is_one_line(tmp_path):
    path = tmp_path / "bomb.gif"  # GIF sizes come from Pillow, which refuses this one
    Image.new("P", (4, 4)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:6] + struct.pack("<HH", 65535, 65535) + data[10:])  # the logical screen size
    with pytest.raises(InputError, match=r"bomb\.gif: .*pixels") as error:
        image_size(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read the image size"),
        (b"not an image at all", "cannot read the image size"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "cannot read the image size"),  # cut before the frame header
        (None, "the image header declares 0x7 pixels"),
    ],
)
def test_unreadable_or_empty_images_name_the_file(tmp_path, content, message):
    path = tmp_path / "x.png"
    path.write_bytes(png_header(0, 7) if content is None else content)
    with pytest.raises(InputError, match=rf"x\.png: {message}"):
        image_size(path)


def test_missing_file_directory_and_symlink_loop_name_the_path(tmp_path):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    (tmp_path / "dir.jpg").mkdir()
    for path in (tmp_path / "missing.jpg", tmp_path / "dir.jpg", loop):
        with pytest.raises(InputError, match=rf"{path.name}: cannot read the image"):
            image_size(path)
