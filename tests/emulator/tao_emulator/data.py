"""Images, KITTI labels and the emulator's stand-in for TFRecords."""

from __future__ import annotations

import glob
import json
import os
import struct

from .runtime import TaskFailed

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
RECORD_HEADER = "TAOEMU-TFRECORD v1"


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or BMP header; None if not recognised."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return w, h
            if head.startswith(b"BM") and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return w, abs(h)
            if head.startswith(b"\xff\xd8"):
                fh.seek(2)
                while True:
                    marker = fh.read(2)
                    if len(marker) < 2 or marker[0] != 0xFF:
                        return None
                    code = marker[1]
                    if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
                        continue
                    seglen_raw = fh.read(2)
                    if len(seglen_raw) < 2:
                        return None
                    seglen = struct.unpack(">H", seglen_raw)[0]
                    if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                                0xCD, 0xCE, 0xCF):
                        data = fh.read(5)
                        h, w = struct.unpack(">HH", data[1:5])
                        return w, h
                    fh.seek(seglen - 2, 1)
    except OSError:
        return None
    return None


def list_images(directory: str, ext: str | None = None) -> list[str]:
    """Sorted image file names in a directory (by one extension, or any image extension)."""
    if not os.path.isdir(directory):
        raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{directory}'")
    names = []
    for name in sorted(os.listdir(directory)):
        if ext is not None:
            if name.endswith(ext):
                names.append(name)
        elif os.path.splitext(name)[1].lower() in IMAGE_EXTS:
            names.append(name)
    return names


def read_kitti(path: str) -> list[dict]:
    """Objects of one KITTI label file: class and box; raises on a malformed line."""
    objects = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) not in (15, 16):
                raise TaskFailed(f"ValueError: {path}:{lineno}: a KITTI label line has 15 "
                                 f"fields, found {len(parts)}")
            try:
                x1, y1, x2, y2 = (float(v) for v in parts[4:8])
            except ValueError:
                raise TaskFailed(f"ValueError: {path}:{lineno}: bad box coordinates") from None
            objects.append({"cls": parts[0].lower(), "box": [x1, y1, x2, y2],
                            "difficult": parts[2] not in ("0", "0.0", "0.00")})
    return objects


# ---------------------------------------------------------------------------------------------
# records


def write_shard(path: str, entries: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(RECORD_HEADER + "\n")
        for e in entries:
            fh.write(json.dumps(e, sort_keys=True) + "\n")


def read_shard(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip()
        if header != RECORD_HEADER:
            raise TaskFailed(f"DataLossError: corrupted record at 0 in {path}")
        return [json.loads(line) for line in fh if line.strip()]


def shard_fold(path: str) -> int | None:
    base = os.path.basename(path)
    marker = "-fold-"
    if marker not in base:
        return None
    try:
        return int(base.split(marker, 1)[1][:3])
    except ValueError:
        return None


def records_from_glob(pattern: str) -> list[tuple[int | None, dict]]:
    paths = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    if not paths:
        raise TaskFailed(f"ValueError: No tfrecord files found matching {pattern}")
    out = []
    for p in paths:
        fold = shard_fold(p)
        out.extend((fold, e) for e in read_shard(p))
    return out


def resolve_image(image_dir: str, entry: dict, image_extension: str | None) -> str:
    """Where the training loader looks for a record's image."""
    if image_extension:
        return os.path.join(image_dir, entry["frame_id"] + "." + image_extension)
    return os.path.join(image_dir, entry["frame_id"] + entry["ext"])


def samples_from_label_dirs(image_dir: str, label_dir: str, image_extension: str | None) -> list[dict]:
    """Samples of a data source given as image + KITTI label directories."""
    if not os.path.isdir(label_dir):
        raise TaskFailed(f"FileNotFoundError: [Errno 2] No such file or directory: '{label_dir}'")
    ext = ("." + image_extension) if image_extension else None
    samples = []
    for name in list_images(image_dir, ext):
        stem = os.path.splitext(name)[0]
        label = os.path.join(label_dir, stem + ".txt")
        if not os.path.isfile(label):
            raise TaskFailed(f"FileNotFoundError: label file {label} for image "
                             f"{os.path.join(image_dir, name)} does not exist")
        samples.append({"image": os.path.join(image_dir, name), "objects": read_kitti(label)})
    return samples
