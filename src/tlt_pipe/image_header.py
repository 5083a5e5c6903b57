"""The pixel size of an image file, read from its header bytes.

``yolo_v4 kmeans`` normalises every box by the size of its image, so computing anchors reads
one image header per label file: tens of thousands of them. Pillow's ``Image.open`` parses
the whole header into Python objects (about 60 microseconds a file); here one block is read
and only the fields that give the size are looked at:

- JPEG: the start-of-frame segment (any of SOF0-SOF15 but DHT, JPG and DAC), found by
  walking the segment lengths from the start, with a further read when EXIF or ICC data
  pushes it past the first block;
- PNG: the IHDR chunk, which must come first;
- BMP: the info header (OS/2 or Windows; a negative height means top-down rows).

Anything else, or a header these rules do not understand, is left to Pillow, so the answer
is always Pillow's. The size is the stored one: EXIF orientation is not applied, as TAO
does not apply it either.
"""

from __future__ import annotations

import os
import stat

from tlt_pipe.errors import InputError
from tlt_pipe.regular_file import NOT_REGULAR

__all__ = ["image_size"]

_BLOCK = 4096
# JPEG start-of-frame markers: 0xC0-0xCF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG = b"\x89PNG\r\n\x1a\n"
# Pillow refuses to open an image past twice its MAX_IMAGE_PIXELS (a decompression bomb); a header that
# declares more is left to Pillow, so the refusal and its message are Pillow's.
_PILLOW_BOMB = 2 * (1024 * 1024 * 1024 // 4 // 3)


def image_size(path: str | os.PathLike[str], *, dir_fd: int | None = None,
               name: str | None = None) -> tuple[int, int]:
    """(width, height) of the image at path. Raises InputError naming the file when it cannot
    be read, is not an image, or declares no pixels.

    With ``dir_fd`` (an open handle on the image's folder) and ``name`` (its name there), the
    file is opened relative to the handle; ``path`` still names it in errors."""
    flags = os.O_RDONLY | os.O_NONBLOCK  # a FIFO without a writer would block the open itself
    try:
        fd = os.open(path, flags) if dir_fd is None else os.open(name or path, flags, dir_fd=dir_fd)
        try:
            head = os.read(fd, _BLOCK)
            size = _jpeg(fd, head) if head[:2] == b"\xff\xd8" else _png(head) or _bmp(head)
            if size is not None and size[0] * size[1] > _PILLOW_BOMB:
                size = None
            if size is None and not stat.S_ISREG(os.fstat(fd).st_mode):  # Pillow would wait on a FIFO
                raise InputError(f"{os.fspath(path)}: {NOT_REGULAR}")
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read the image ({exc.strerror or exc})") from None
    if size is None:
        size = _pillow_size(path)
    if size[0] < 1 or size[1] < 1:
        raise InputError(f"{os.fspath(path)}: the image header declares {size[0]}x{size[1]} pixels")
    return size


def _jpeg(fd: int, buf: bytes) -> tuple[int, int] | None:
    base, pos = 0, 2  # pos: file offset of the next marker; buf holds the bytes from base
    while True:
        if pos + 9 > base + len(buf):
            buf, base = os.pread(fd, _BLOCK, pos), pos
            if len(buf) < 9:
                return None
        i = pos - base
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        elif marker in _SOF:
            return (buf[i + 7] << 8 | buf[i + 8], buf[i + 5] << 8 | buf[i + 6])
        elif marker in (0xD9, 0xDA):  # end of image or scan data before any frame header
            return None
        else:
            pos += 2 + (buf[i + 2] << 8 | buf[i + 3])


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != _PNG or head[12:16] != b"IHDR" or len(head) < 24:
        return None
    return (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"BM" or len(head) < 26:
        return None
    info = int.from_bytes(head[14:18], "little")
    if info == 12:  # OS/2 BITMAPCOREHEADER: 16-bit unsigned sizes
        return (int.from_bytes(head[18:20], "little"), int.from_bytes(head[20:22], "little"))
    if info in (40, 52, 56, 64, 108, 124):
        width = int.from_bytes(head[18:22], "little", signed=True)
        height = int.from_bytes(head[22:26], "little", signed=True)
        return (width, abs(height)) if width > 0 else None
    return None


def _pillow_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # parses the header only
            return image.size
    except Image.DecompressionBombError as exc:
        raise InputError(f"{os.fspath(path)}: {exc}") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise InputError(f"{os.fspath(path)}: cannot read the image size ({exc})") from None
