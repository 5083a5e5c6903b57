#!/usr/bin/env python3
"""Benchmark of `tltpipe convert` against a straightforward Pillow converter.

    python bench/bench_convert.py                 # 5,000 images of 1920x1080 per format
    python bench/bench_convert.py --quick         # 300 images, under a minute
    python bench/bench_convert.py --images 20000 --formats crpd --cases noresize

Generates synthetic datasets once (a few encoded 1920x1080 JPEGs hard-linked under many
names, random labels) in --workdir (default ~/.cache/tltpipe-bench), then times each case
in a fresh process:

- baseline: one process; per image open, convert("RGB"), [resize], save, write the
  KITTI label (what tutorial scripts do), at the same JPEG quality as tltpipe;
- tltpipe: convert() with every core (header-only reads and hard links without resize;
  a process pool and JPEG draft decoding with resize).

Before each run the previous output is deleted and the benchmark waits (up to 2 minutes,
not in --quick) until creating a file is cheap again: on some disks deleting thousands
of files slows file creation for tens of seconds, which would otherwise be charged to
whichever run comes next.

Prints a table with seconds, images/s, the speed-up over the baseline, the peak RSS of
the converting process and of the largest worker, and the no-resize run at a quarter of
the images to show memory does not grow with the dataset (beyond the list of names).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
try:
    import tlt_pipe  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parent / "src"))

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

FRAME = (1920, 1080)
CCPD_FRAME = (720, 1160)
POOL_SIZE = 4
QUALITY = 95  # tltpipe's default; the baseline uses the same
FORMATS = ("crpd", "ccpd", "yolo", "voc", "openalpr", "kitti")
GENERATION = 3  # bump when the generated data changes: cached datasets are rebuilt


# -- synthetic data ------------------------------------------------------------------------


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    """Camera-like content (sky, road, cars, texture) so decoding costs what a photo costs."""
    rng = random.Random(seed)
    w, h = size
    image = Image.new("RGB", size, (120, 150, 190))
    draw = ImageDraw.Draw(image)
    for y in range(0, h, 8):
        shade = int(90 + 80 * y / h)
        draw.rectangle([0, y, w, y + 8], fill=(shade, shade + 10, shade + 25) if y < h // 2 else (shade // 2,) * 3)
    for _ in range(60):
        x, y = rng.randrange(w), rng.randrange(h // 3, h)
        draw.rectangle([x, y, x + rng.randint(40, 400), y + rng.randint(20, 200)],
                       fill=tuple(rng.randint(0, 255) for _ in range(3)))
    noise = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(image.filter(ImageFilter.GaussianBlur(1.2)), noise, 0.12)


def _pool(workdir: Path, size: tuple[int, int]) -> list[Path]:
    pool = []
    for i in range(POOL_SIZE):
        path = workdir / "pool" / f"{size[0]}x{size[1]}_{i}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _photo(size, i).save(path, quality=90)
        pool.append(path)
    return pool


def _place(pool: list[Path], dst: Path, i: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(pool[i % len(pool)], dst)
    except OSError:
        shutil.copyfile(pool[i % len(pool)], dst)


def _quads(rng: random.Random, n: int, size=FRAME):
    for _ in range(n):
        w, h = rng.uniform(80, 260), rng.uniform(25, 80)
        x, y = rng.uniform(0, size[0] - w), rng.uniform(size[1] * 0.3, size[1] - h)
        corners = [(x, y), (x + w, y + rng.uniform(-8, 8)), (x + w, y + h), (x + rng.uniform(-5, 5), y + h)]
        corners = [(min(max(px, 0.0), size[0]), min(max(py, 0.0), size[1])) for px, py in corners]
        start = rng.randrange(4)
        yield corners[start:] + corners[:start]


def generate(fmt: str, root: Path, n: int, workdir: Path) -> Path:
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(n)
    pool = _pool(workdir, CCPD_FRAME if fmt == "ccpd" else FRAME)
    for i in range(n):
        n_obj = rng.choice((1, 1, 1, 2, 3))
        quads = list(_quads(rng, n_obj, CCPD_FRAME if fmt == "ccpd" else FRAME))
        boxes = [(min(p[0] for p in q), min(p[1] for p in q), max(p[0] for p in q), max(p[1] for p in q)) for q in quads]
        if fmt == "crpd":
            subset = ("single", "double", "multi")[min(n_obj, 3) - 1]
            split = "val" if i % 5 == 0 else "train"
            base = root / f"CRPD_{subset}" / split
            stem = f"{rng.randint(10, 99)}_{i:05d}"
            _place(pool, base / "images" / f"{stem}.jpg", i)
            lines = [" ".join(f"{v:.0f}" for p in q for v in p) + f" {rng.randint(0, 3)} 京A{i:05d}" for q in quads]
            (base / "labels").mkdir(parents=True, exist_ok=True)
            (base / "labels" / f"{stem}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        elif fmt == "ccpd":
            x1, y1, x2, y2 = (int(v) for v in boxes[0])
            name = f"{i:05d}-90_90-{x1}&{y1}_{x2}&{y2}-{x2}&{y2}_{x1}&{y2}_{x1}&{y1}_{x2}&{y1}-0_0_1_2_3_4_5-100-20.jpg"
            _place(pool, root / ("ccpd_base" if i % 4 else "ccpd_blur") / name, i)
        elif fmt == "yolo":
            if i == 0:
                root.mkdir(parents=True, exist_ok=True)
                (root / "obj.names").write_text("car\nbus\n")
            split = "val" if i % 5 == 0 else "train"
            _place(pool, root / "images" / split / f"{i:05d}.jpg", i)
            w, h = FRAME
            lines = [f"{k % 2} {(b[0] + b[2]) / 2 / w:.6f} {(b[1] + b[3]) / 2 / h:.6f} {(b[2] - b[0]) / w:.6f} "
                     f"{(b[3] - b[1]) / h:.6f}" for k, b in enumerate(boxes)]
            label = root / "labels" / split / f"{i:05d}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("\n".join(lines) + "\n")
        elif fmt == "voc":
            _place(pool, root / "JPEGImages" / f"{i:05d}.jpg", i)
            objects = "".join(
                f"<object><name>{('car', 'bus')[k % 2]}</name><difficult>0</difficult><bndbox><xmin>{b[0] + 1:.0f}</xmin>"
                f"<ymin>{b[1] + 1:.0f}</ymin><xmax>{b[2] + 1:.0f}</xmax><ymax>{b[3] + 1:.0f}</ymax></bndbox></object>\n"
                for k, b in enumerate(boxes))
            xml = root / "Annotations" / f"{i:05d}.xml"
            xml.parent.mkdir(parents=True, exist_ok=True)
            xml.write_text(f"<annotation>\n<filename>{i:05d}.jpg</filename>\n{objects}</annotation>\n")
        elif fmt == "openalpr":
            region = ("us", "eu", "br")[i % 3]
            base = root / "benchmarks" / "endtoend" / region
            _place(pool, base / f"{i:05d}.jpg", i)
            b = boxes[0]
            (base / f"{i:05d}.txt").write_text(
                f"{i:05d}.jpg\t{b[0]:.0f}\t{b[1]:.0f}\t{b[2] - b[0]:.0f}\t{b[3] - b[1]:.0f}\tAB{i:05d}\n")
        elif fmt == "kitti":
            _place(pool, root / "images" / f"{i:06d}.jpg", i)
            label = root / "labels" / f"{i:06d}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(
                f"{('car', 'bus')[k % 2]} 0.00 0 0.00 {b[0]:.2f} {b[1]:.2f} {b[2]:.2f} {b[3]:.2f} "
                "0.00 0.00 0.00 0.00 0.00 0.00 0.00\n" for k, b in enumerate(boxes)))
    done.write_text("")
    return root


# -- the straightforward converter (what tutorial scripts do) -------------------------------


def baseline_crpd(src: Path, out: Path, resize: tuple[int, int] | None, limit: int | None) -> int:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    count = 0
    for label in sorted(src.glob("CRPD_*/*/labels/*.txt")):
        if limit is not None and count >= limit:
            break
        image = Image.open(label.parent.parent / "images" / f"{label.stem}.jpg")
        image = image.convert("RGB")
        sx = sy = 1.0
        if resize:
            sx, sy = resize[0] / image.width, resize[1] / image.height
            image = image.resize(resize)
        name = f"{label.parent.parent.parent.name}_{label.parent.parent.name}_{label.stem}"
        image.save(out / "images" / f"{name}.jpg", quality=QUALITY)
        lines = []
        for line in label.read_text(encoding="utf-8").splitlines():
            values = [float(v) for v in line.split()[:8]]
            xs, ys = values[0::2], values[1::2]
            lines.append(f"lpd 0.00 0 0.00 {min(xs) * sx:.2f} {min(ys) * sy:.2f} {max(xs) * sx:.2f} "
                         f"{max(ys) * sy:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00")
        (out / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
        count += 1
    return count


# -- one measured run (in a child process) ----------------------------------------------------


def _descendants_hwm(root: int, stop: threading.Event, peak: list[int]) -> None:
    """Sample the peak RSS (VmHWM) of root's descendants (the pool workers), from outside
    root so that the measured process keeps a single thread (and forks its workers)."""
    while not stop.wait(0.05):
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        for pid in parents:
            p, depth = parents.get(pid), 0
            while p not in (None, 0, 1, root) and depth < 8:
                p, depth = parents.get(p), depth + 1
            if p == root:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                peak[0] = max(peak[0], int(line.split()[1]))
                except OSError:
                    pass


def _own_hwm_kb() -> int:
    """Peak RSS of this process image (VmHWM; ru_maxrss would include the parent's size
    at fork time, which Linux carries across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def child(spec: dict) -> dict:
    from tlt_pipe.datasets import ConvertOptions, convert  # imported before the clock starts, like PIL

    src, out = Path(spec["src"]), Path(spec["out"])
    resize = tuple(spec["resize"]) if spec.get("resize") else None
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    if spec["kind"] == "baseline":
        images = baseline_crpd(src, out, resize, spec.get("limit"))
    else:
        options = ConvertOptions(resize=resize, jobs=spec.get("jobs"), jpeg_quality=QUALITY)
        images = convert(spec["fmt"], src, out, options).images
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "images": images,
        "main_rss_mb": _own_hwm_kb() / 1024,
    }


def _create_ms(work: Path, n: int = 300) -> float:
    probe = work / "probe"
    shutil.rmtree(probe, ignore_errors=True)
    probe.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(n):
        (probe / f"{i}.txt").write_bytes(b"x")
    elapsed = (time.perf_counter() - t0) / n * 1000
    shutil.rmtree(probe)
    return elapsed


def settle(work: Path, limit: float = 120.0) -> float:
    """Remove the last run's output and wait until the filesystem has digested it.

    Deleting thousands of files leaves the filesystem busy (journal checkpoints, discards)
    for a while, and file creation can be 20x slower meanwhile; without this the run after
    a deletion pays for it. Waits until creating a file costs no more than twice the best
    seen (or 0.1 ms), at most `limit` seconds. Returns the seconds waited.
    """
    shutil.rmtree(work / "out", ignore_errors=True)
    started = time.perf_counter()
    os.sync()
    best = None
    while True:
        cost = _create_ms(work)
        best = cost if best is None else min(best, cost)
        if cost <= max(0.1, 2 * best) and (cost <= 0.1 or time.perf_counter() - started > 20):
            break
        if time.perf_counter() - started > limit:
            break
        time.sleep(3)
    return time.perf_counter() - started


def measure(spec: dict, settle_limit: float = 120.0) -> dict:
    waited = settle(Path(spec["out"]).parent, settle_limit)
    if waited > 1:
        print(f"  (waited {waited:.0f} s for the filesystem to settle after the last run)", flush=True)
    process = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_descendants_hwm, args=(process.pid, stop, peak), daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"benchmark run failed: {spec}\n{stderr[-3000:]}")
    return dict(json.loads(stdout.strip().splitlines()[-1]), worker_rss_mb=peak[0] / 1024)


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="300 images (under a minute)")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--jobs", type=int, default=None, help="tltpipe workers (default: all cores)")
    parser.add_argument("--baseline-images", type=int, default=None,
                        help="time the baseline on this many images and scale up (default: all)")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser.add_argument("--workdir", type=Path, default=cache / "tltpipe-bench",
                        help="generated datasets and outputs (default: %(default)s)")
    parser.add_argument("--cases", choices=("all", "noresize", "resize"), default="all",
                        help="only the no-resize or the resize comparison (and the other formats with noresize)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    n = 300 if args.quick else args.images
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    work = args.workdir
    print(f"tltpipe convert benchmark: {n} images per format, {FRAME[0]}x{FRAME[1]} JPEGs "
          f"(CCPD {CCPD_FRAME[0]}x{CCPD_FRAME[1]}), {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"Pillow {Image.__version__}", flush=True)
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} at start" + (
        " (other processes are using the cores: parallel speed-ups will be understated)"
        if load > 0.5 * (os.cpu_count() or 1) else ""), flush=True)
    started = time.perf_counter()
    data = work / f"data-v{GENERATION}"
    sources = {fmt: generate(fmt, data / f"{fmt}-{n}", n, work) for fmt in formats}
    print(f"datasets ready in {time.perf_counter() - started:.1f} s under {data}", flush=True)
    print(f"file creation in the workdir: {_create_ms(work):.3f} ms per file (both converters create files there)",
          flush=True)

    rows: list[tuple] = []
    limit_s = 0.0 if args.quick else 120.0  # quick: no waiting for the filesystem

    def row(name, result, baseline=None, scaled_from=None):
        per_image = result["seconds"] / max(result["images"], 1)
        speedup = f"{baseline['seconds'] / result['seconds']:.1f}x" if baseline else ""
        note = f" (timed on {scaled_from}, scaled)" if scaled_from else ""
        rows.append((name + note, result["images"], result["seconds"], 1 / per_image if per_image else 0, speedup,
                     result["main_rss_mb"], result["worker_rss_mb"]))
        print(f"  {name}{note}: {result['seconds']:.2f} s {speedup}", flush=True)

    out = str(work / "out")
    if "crpd" in formats:
        src = str(sources["crpd"])
        modes = {"all": (None, [960, 544]), "noresize": (None,), "resize": ([960, 544],)}[args.cases]
        for resize in modes:
            label = "no resize" if resize is None else "resize 960x544"
            limit = args.baseline_images if args.baseline_images and args.baseline_images < n else None
            base = measure(settle_limit=limit_s, spec={"kind": "baseline", "src": src, "out": out, "resize": resize, "limit": limit})
            if limit:
                base = dict(base, seconds=base["seconds"] * n / base["images"], images=n)
            row(f"baseline crpd, {label}", base, scaled_from=limit)
            ours = measure(settle_limit=limit_s, spec={"kind": "tltpipe", "fmt": "crpd", "src": src, "out": out, "resize": resize, "jobs": args.jobs})
            row(f"tltpipe  crpd, {label}", ours, base)
        quarter = n // 4
        if quarter >= 50 and args.cases != "resize":
            small = generate("crpd", data / f"crpd-{quarter}", quarter, work)
            row(f"tltpipe  crpd, no resize, {quarter} images (memory)",
                measure(settle_limit=limit_s, spec={"kind": "tltpipe", "fmt": "crpd", "src": str(small), "out": out, "jobs": args.jobs}))
    for fmt in formats if args.cases != "resize" else ():
        if fmt != "crpd":
            row(f"tltpipe  {fmt}, no resize",
                measure(settle_limit=limit_s, spec={"kind": "tltpipe", "fmt": fmt, "src": str(sources[fmt]), "out": out, "jobs": args.jobs}))

    print()
    header = ("case", "images", "seconds", "images/s", "vs baseline", "main RSS MB", "worker RSS MB")
    widths = [max(len(header[0]), *(len(r[0]) for r in rows)), 7, 9, 10, 12, 12, 14]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        cells = [r[0], str(r[1]), f"{r[2]:.2f}", f"{r[3]:.0f}", r[4], f"{r[5]:.0f}", f"{r[6]:.0f}" if r[6] else "-"]
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    settle(work, limit=0)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; RSS = peak resident set size "
          "(main: the converting process; worker: the largest pool worker)")


if __name__ == "__main__":
    main()
