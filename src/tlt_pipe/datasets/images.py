"""Image I/O with Pillow: header-only size reads, hard links, one-decode resizing.

Without resize an image is never decoded: its size comes from the header, a truncated file
is caught by looking at its last bytes (a JPEG must end with the EOI marker, a PNG with its
IEND chunk; only a suspicious file is decoded to confirm), and the output is a hard link
(a copy where linking is impossible). With resize the file is opened once and decoded once,
in JPEG draft mode when that can shrink it by a power of two (DCT scaling), which is where
most of the decode time goes.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tlt_pipe.regular_file import open_regular

FORMAT_EXTS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "BMP": ".bmp"}
LETTERBOX_FILL = (114, 114, 114)
# Draft decoding may come out up to this much smaller than the target; the final resize
# then scales up by at most 2% in one direction instead of decoding at full size.
DRAFT_SLACK = 1.02


class Unreadable(Exception):
    """The image cannot be read (not an image, truncated, corrupt)."""


class Missing(Unreadable):
    """The image file does not exist."""


@dataclass(frozen=True)
class Plan:
    """How source pixel coordinates map to the output image: x' = x * sx + ox."""

    size: tuple[int, int]  # output size
    scaled: tuple[int, int]  # size of the scaled picture inside it
    sx: float
    sy: float
    ox: int
    oy: int

    def point(self, x: float, y: float) -> tuple[float, float]:
        return x * self.sx + self.ox, y * self.sy + self.oy


def plan_resize(source: tuple[int, int], target: tuple[int, int], mode: str) -> Plan:
    """stretch: fill the target, aspect ignored; letterbox: keep aspect, centre, pad."""
    w, h = source
    tw, th = target
    if mode == "stretch":
        return Plan(target, target, tw / w, th / h, 0, 0)
    scale = min(tw / w, th / h)
    nw, nh = max(1, min(tw, round(w * scale))), max(1, min(th, round(h * scale)))
    return Plan(target, (nw, nh), nw / w, nh / h, (tw - nw) // 2, (th - nh) // 2)


class SourceImage:
    """An opened source image: size and format from the header, nothing decoded yet."""

    def __init__(self, path: str | Path):
        self.path = path
        try:
            self._file = open_regular(path)
        except FileNotFoundError:
            raise Missing("no such file") from None
        except OSError as exc:
            raise Unreadable(exc.strerror or str(exc)) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._image = Image.open(self._file)
            self.size: tuple[int, int] = self._image.size
            self.format: str = self._image.format or ""
        except Exception as exc:  # Pillow raises many types for bad files
            self._file.close()
            raise Unreadable(_describe(exc)) from None
        if self.size[0] <= 0 or self.size[1] <= 0:
            self.close()
            raise Unreadable(f"empty image {self.size[0]}x{self.size[1]}")
        if self.format not in FORMAT_EXTS:  # the content decides, not the extension: TAO reads the folder as one format
            self.close()
            named = os.path.splitext(path)[1].lower() or "an extensionless"
            raise Unreadable(f"{self.format or 'unknown'} data in {named} file; TAO reads JPEG, PNG or BMP: convert it")
        self.ext = FORMAT_EXTS[self.format]

    def __enter__(self) -> SourceImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._image.close()
        except Exception:
            pass
        self._file.close()

    def check_complete(self) -> None:
        """Raise Unreadable for a truncated file, decoding only when the tail looks wrong."""
        marker = {"JPEG": b"\xff\xd9", "MPO": b"\xff\xd9", "PNG": b"IEND"}.get(self.format)
        if marker is None:
            return
        f = self._file
        f.seek(0, os.SEEK_END)
        length = f.tell()
        f.seek(max(0, length - 16))
        if marker in f.read(16):
            return
        try:  # no end marker: maybe trailing bytes after it, maybe truncated
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._image.load()
        except Exception as exc:
            raise Unreadable(_describe(exc)) from None

    def link_to(self, dst: str | Path) -> None:
        link_or_copy(self.path, dst)

    def save_resized(self, dst: str | Path, plan: Plan, quality: int) -> None:
        """Decode once (draft mode where possible), resize per plan, save to dst."""
        image = self._image
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                box = None
                if self.format in ("JPEG", "MPO"):
                    sw, sh = plan.scaled
                    request = (max(1, math.ceil(sw / DRAFT_SLACK)), max(1, math.ceil(sh / DRAFT_SLACK)))
                    drafted = image.draft("RGB", request)
                    if drafted is not None:
                        box = drafted[1]
                image.load()
                if image.mode != "RGB":
                    image = image.convert("RGB")
                if image.size != plan.scaled or (box and box[2:] != tuple(map(float, image.size))):
                    # after a draft decode the remaining factor is small (at most 2x down or
                    # 2% up) and bilinear is as good as bicubic there, and cheaper
                    image = image.resize(
                        plan.scaled,
                        Image.Resampling.BILINEAR if box else Image.Resampling.BICUBIC,
                        box=box,
                        reducing_gap=None if box else 3.0,
                    )
                if plan.scaled != plan.size:
                    canvas = Image.new("RGB", plan.size, LETTERBOX_FILL)
                    canvas.paste(image, (plan.ox, plan.oy))
                    image = canvas
                ext = os.path.splitext(dst)[1].lower()
                if ext == ".png":
                    image.save(dst, "PNG", compress_level=3)
                elif ext == ".bmp":
                    image.save(dst, "BMP")
                else:
                    image.save(dst, "JPEG", quality=quality)
        except Exception as exc:
            try:
                os.unlink(dst)
            except OSError:
                pass
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                raise  # an output problem, not a bad image
            raise Unreadable(_describe(exc)) from None


_LINKS_WORK = True


def reset_link_state() -> None:
    """Try hard links again (a new conversion may write to another filesystem)."""
    global _LINKS_WORK
    _LINKS_WORK = True


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard-link src to dst; copy when the filesystem or the link count says no."""
    global _LINKS_WORK
    if _LINKS_WORK:
        try:
            os.link(src, dst)
            return
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                _LINKS_WORK = False  # the same on every further file: stop trying
    shutil.copyfile(src, dst)


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "cannot identify image file" in text:
        return "not an image Pillow can read"
    return text.splitlines()[0][:200]
