"""The conversion driver: scan, order, fan out to workers, split, report, swap into place.

1. Scan the source for names only (an Item per image) and count what is skipped.
2. Sort the Items by a seeded hash: a deterministic shuffle that fixes the split.
3. Workers (a process pool, or this process with one job) convert images in that order;
   results come back in order, so the stratified split is decided here, streaming, and a
   validation image is moved from train/ to val/ by a rename.
4. Everything is written in a temporary directory beside OUT that replaces OUT only at the
   end; any failure or interruption removes it and leaves an existing OUT untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath

from tlt_pipe.datasets import formats, worker
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.layout import make_layout
from tlt_pipe.datasets.naming import UniqueStems, order_key
from tlt_pipe.datasets.options import ConvertOptions
from tlt_pipe.datasets.records import Issue, Item, ItemResult, Skip
from tlt_pipe.datasets.report import TOOL, ConvertReport
from tlt_pipe.datasets.split import StratifiedSplitter
from tlt_pipe.errors import ConfigError, InputError, Interrupted, TltPipeError
from tlt_pipe.process_pool import imap_ordered

Progress = Callable[[int, "int | None"], None]
SIDE_FILE = "plates.jsonl"
REPORT_FILE = "report.json"
_IN_PROCESS_BELOW = 64  # fewer images than this: a pool costs more than it saves


def convert(
    fmt: str,
    src: Path,
    out: Path,
    options: ConvertOptions | None = None,
    on_progress: Progress | None = None,
) -> ConvertReport:
    """Convert the dataset at src (in format fmt) into out; return the report.

    Raises ConfigError for bad arguments, InputError for bad input with options.strict
    (message `file:line: reason`), TltPipeError when the output cannot be written, and
    lets KeyboardInterrupt through; in every case out is left as it was.
    """
    options = options or ConvertOptions()
    if fmt not in formats.FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r}: expected one of {', '.join(formats.FORMATS)}")
    shown = str(src)
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"{shown}: no such directory" if not src.exists() else f"{shown}: not a directory")
    src_abs = src.resolve()
    out_abs = out.parent.resolve() / out.name if out.name else out.resolve()
    _check_paths(src_abs, out_abs)
    try:
        out_abs.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(out_abs)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_abs.name}.tmp-{os.getpid()}-", dir=out_abs.parent))
    except (FileExistsError, NotADirectoryError):
        in_way = next((p for p in out_abs.parents if p.exists() and not p.is_dir()), out_abs.parent)
        raise ConfigError(f"{out}: cannot create the output: {in_way} is a file, not a folder") from None
    except OSError as exc:  # no permission is the user's to fix (2); a full disk is not
        error = ConfigError if isinstance(exc, PermissionError) else TltPipeError
        raise error(f"{out}: cannot create the output: {exc.strerror or exc}") from None
    report = ConvertReport(
        format=fmt,
        source=shown,
        output=str(out),
        layout=options.to,
        resize=list(options.resize) if options.resize else None,
        resize_mode=options.resize_mode if options.resize else None,
        val_split=options.val_split,
        seed=options.seed,
    )
    started = time.monotonic()
    try:
        with _sigterm_as_interrupt():
            _run(fmt, SourceContext(src_abs, shown, options), tmp, report, on_progress)
            report.seconds = round(time.monotonic() - started, 3)
            report.finish()
            if not report.images:  # an earlier conversion at out is worth more than an empty one
                raise InputError(f"{nothing_converted(report, fmt)}; nothing was written to {out}")
            if report.unknown_classes and not report.objects_per_class:  # a class map that matches nothing
                raise InputError(f"{no_object_kept(report, options.classes or {})}; nothing was written to {out}")
            (tmp / REPORT_FILE).write_text(report.to_json(), encoding="utf-8")
            _swap_into_place(tmp, out_abs)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TltPipeError(f"{exc.filename or out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def nothing_converted(report: ConvertReport, fmt: str) -> str:
    """Why a conversion wrote no image: what left out the most images, or that none was found."""
    left_out = [(tally.count, reason, tally) for reason, tally in {**report.dropped, **report.skipped}.items()]
    if left_out:
        count, reason, tally = max(left_out, key=lambda entry: entry[0])
        example = f", e.g. {tally.examples[0]}" if tally.examples else ""
        return f"{report.source}: no image was converted ({reason}: {count}{example})"
    subsets = next((w for w in report.warnings if w.startswith("no image in subsets")), None)
    return f"{report.source}: {subsets or f'no {fmt} image found'}"


def no_object_kept(report: ConvertReport, classes: dict[str, str]) -> str:
    """Why every object was dropped: the class map names none of the dataset's classes."""
    found = ", ".join(f"{name} ({count})" for name, count in list(report.unknown_classes.items())[:8])
    wanted = ", ".join(classes) or "none"
    return (f"{report.source}: every object has a class the class map leaves out (the dataset has: {found}; "
            f"the class map keeps: {wanted})")


_REENCODED = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".bmp": ".bmp"}  # anything else becomes JPEG
_PREFERRED = {".jpg": 2, ".png": 1, ".bmp": 0}  # among extensions as common as each other


def _run(fmt: str, ctx: SourceContext, tmp: Path, report: ConvertReport, on_progress: Progress | None) -> None:
    options = ctx.options
    source_format = formats.get(fmt)
    if source_format.prepare is not None:
        ctx = source_format.prepare(ctx)
    items = _scan(source_format, ctx, report, on_progress)
    if options.subsets and not source_format.subsets:
        report.warnings.append(f"{fmt} has no subsets: subsets {', '.join(options.subsets)} ignored")
    elif options.subsets and not items:
        report.warnings.append(f"no image in subsets {', '.join(options.subsets)} ({source_format.subsets})")

    if options.resize:
        counts = Counter(_REENCODED.get(PurePosixPath(item.image).suffix.lower(), ".jpg") for item in items)
        options = replace(options, resize_ext=max(counts.items(), key=lambda kv: (kv[1], _PREFERRED[kv[0]]))[0]
                          if counts else ".jpg")
        ctx = replace(ctx, options=options)
    has_val = any(item.split == "val" for item in items)
    if options.resplit or not has_val:
        items = [item._replace(split=None) for item in items]
        report.split_source = "random"
    else:
        report.split_source = "source"
    items.sort(key=lambda item: order_key(options.seed, item.stem))

    layout = make_layout(options.to, tmp)
    layout.prepare()
    collector = _Collector(layout, tmp, report, StratifiedSplitter(options.val_split, options.seed), options.strict)
    total = len(items)
    if on_progress:
        on_progress(0, total)
    try:
        with _results(worker.Job(fmt, ctx, tmp, options.to), items, options.workers) as results:
            for done, (item, result) in enumerate(zip(items, results), start=1):
                collector.add(item, result)
                if on_progress:
                    on_progress(done, total)
    finally:
        collector.close()
    if collector.plates:
        report.side_file = str(Path(report.output) / SIDE_FILE)
    if options.classes:
        classes = sorted({layout.class_name(c) for c in options.classes.values()})
    else:
        classes = sorted(report.objects_per_class)
    report.classes = classes
    layout.finish(classes)


class _Collector:
    """Takes worker results in order: counts, decides the fold, places files, plates."""

    def __init__(self, layout, root: Path, report: ConvertReport, splitter: StratifiedSplitter, strict: bool):
        self.layout = layout
        self.root = root
        self.report = report
        self.splitter = splitter
        self.strict = strict
        self.plates = 0
        self._side = None

    def add(self, item: Item, result: ItemResult) -> None:
        report = self.report
        for issue in result.issues:
            report.add_issue(issue)
            if self.strict and issue.bad_input:
                raise InputError(issue.message())
        for cls in result.unknown:
            report.add_unknown(cls)
        for issue in result.dropped:
            report.add_issue(issue)
        for where in result.clamped:
            report.clamped.add(where)
        if result.skip is not None:
            report.add_skip(result.skip.reason, result.skip.where)
        if not result.ok:
            return
        fold = item.split or self.splitter.assign(result.classes)
        self.layout.place(result, fold)
        report.add_image(fold, result.size, result.ext, result.classes)
        if result.plates:
            if self._side is None:
                self._side = open(self.root / SIDE_FILE, "w", encoding="utf-8")
            where = json.dumps(
                {
                    "image": self.layout.image_rel(fold, result.stem, result.ext),
                    "label": self.layout.label_rel(fold, result.stem),
                },
                ensure_ascii=False,
            )
            for plate in result.plates:  # '{"image": ..., "label": ...' + ', "line": ...}'
                self._side.write(where[:-1] + (", " + plate[1:] if plate != "{}" else "}") + "\n")
                self.plates += 1

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
        self.layout.close()


def _scan(source_format, ctx: SourceContext, report: ConvertReport, on_progress: Progress | None) -> list[Item]:
    items: list[Item] = []
    stems = UniqueStems()
    for event in source_format.scan(ctx):
        if isinstance(event, Item):
            items.append(event._replace(stem=stems.take(event.stem)))
            if on_progress and len(items) % 1000 == 0:
                on_progress(len(items), None)
        elif isinstance(event, Issue):
            report.add_issue(event)
            if ctx.options.strict and event.bad_input:
                raise InputError(event.message())
        elif isinstance(event, Skip):
            report.add_skip(event.reason, event.where)
    return items


@contextlib.contextmanager
def _results(job: worker.Job, items: list[Item], workers: int) -> Iterator[Iterator[ItemResult]]:
    """Results in item order, from a process pool or from this process.

    The pool is terminated (its workers joined) before this context exits, so nothing is
    still writing when the caller removes the temporary tree after an error.
    """
    if workers <= 1 or len(items) < _IN_PROCESS_BELOW:
        worker.init(job, in_worker=False)
        yield (worker.process(item) for item in items)
        return
    workers = min(workers, max(1, len(items) // 16))
    chunk = max(1, min(64, len(items) // (workers * 16)))
    with imap_ordered(worker.process, items, workers, initializer=worker.init, initargs=(job,),
                      chunksize=chunk) as results:
        yield results


# -- output directory handling ----------------------------------------------------------


def _check_paths(src: Path, out: Path) -> None:
    if out == src:
        raise ConfigError(f"{out}: the output must differ from the source")
    if src in out.parents:
        raise ConfigError(f"{out}: the output must not be inside the source {src}")
    if out in src.parents:
        raise ConfigError(f"{out}: the output must not contain the source {src}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not _is_ours(out):
        raise ConfigError(
            f"{out}: exists and is not a tltpipe conversion output (no {REPORT_FILE}); "
            "refusing to replace it"
        )


def _is_ours(out: Path) -> bool:
    try:
        return json.loads((out / REPORT_FILE).read_text(encoding="utf-8")).get("tool") == TOOL
    except (OSError, ValueError, AttributeError):
        return False


def _remove_stale_temps(out: Path) -> None:
    """Temporary trees of conversions that were killed (their process is gone)."""
    for prefix in (f".{out.name}.tmp-", f".{out.name}.old-"):
        for path in out.parent.glob(prefix + "*"):
            pid = path.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False when unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):  # tmp now holds the old output
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Let SIGTERM unwind like Ctrl-C (so the temp tree is removed), if nobody handles it."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise Interrupted("terminated", exit_code=143)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
