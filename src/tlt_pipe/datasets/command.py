"""`tltpipe convert FORMAT SRC OUT`: the converters as a standalone command."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from tlt_pipe.datasets.options import RESIZE_MODES, TARGETS, ConvertOptions, parse_classes, parse_resize
from tlt_pipe.errors import TltPipeError
from tlt_pipe.registry import DATASET_FORMATS as FORMATS


class ConvertError(click.ClickException):
    """One line on stderr (`Error: ...`) and the error's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(" ".join(str(message).split("\n")))
        self.exit_code = exit_code


class _Progress:
    """`converting 1234/5000` redrawn in place on a terminal; silent otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and (total is None or done < total):
            return
        self._last = now
        text = f"scanning: {done} images" if total is None else f"converting {done}/{total}"
        if total:
            text += f" ({100 * done // total}%)"
        click.echo(f"\r{text}\x1b[K", err=True, nl=False)
        self._drawn = True

    def end(self) -> None:
        if self._drawn:
            click.echo("\r\x1b[K", err=True, nl=False)
            self._drawn = False


def _subsets(values: tuple[str, ...]) -> list[str] | None:
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return names or None


@click.command("convert")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS, case_sensitive=False))
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--classes", metavar="MAP", help="Class map: `src=train,src2=train2`, `a,b` (keep only these), or a YAML/JSON file.")
@click.option("--resize", metavar="WxH", help="Resize every image to exactly WxH (multiples of 16), e.g. 960x544.")
@click.option("--resize-mode", type=click.Choice(RESIZE_MODES), default="stretch", show_default=True,
              help="stretch: ignore aspect (as the tutorials do); letterbox: keep aspect and pad.")
@click.option("--val-split", type=float, default=10.0, show_default=True, metavar="PERCENT",
              help="Validation fold size when the source has no train/val split of its own.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores].")
@click.option("--strict", is_flag=True, help="Fail on the first bad input (file:line) instead of skipping it.")
@click.option("--subsets", multiple=True, metavar="LIST",
              help="Only these subsets/regions, e.g. single,double (CRPD) or base,blur (CCPD).")
@click.option("--names", "names_file", type=click.Path(path_type=Path), help="YOLO class names: obj.names or data.yaml.")
@click.option("--to", "to", type=click.Choice(TARGETS), default="kitti", show_default=True,
              help="kitti: TAO's train/ and val/ trees; voc: the PyTorch SSD layout; "
                   "coco: train/ and val/ images, each with an annotations.json (RT-DETR, DINO).")
@click.option("--resplit", is_flag=True, help="Ignore the source's own train/val split; split afresh.")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="Quality of re-encoded JPEGs (with --resize).")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
def convert(fmt, src, out, classes, resize, resize_mode, val_split, seed, jobs, strict, subsets,
            names_file, to, resplit, jpeg_quality, quiet):
    """Convert a dataset in FORMAT at SRC into TAO's KITTI layout at OUT.

    OUT gets train/{images,labels}, val/{images,labels} and report.json (plus plates.jsonl
    for plate datasets); with --to coco, {train,val}/images and {train,val}/annotations.json.
    It is written beside OUT and replaces an earlier conversion only when complete.
    """
    progress = _Progress(not quiet)
    try:
        if not src.exists():
            raise ConvertError(f"{src}: no such directory", 2)
        if names_file is not None and not names_file.exists():
            raise ConvertError(f"{names_file}: no such file", 2)  # a FIFO or a folder: load_names says which
        options = ConvertOptions(
            classes=parse_classes(classes) if classes else None,
            resize=parse_resize(resize) if resize else None,
            resize_mode=resize_mode,
            val_split=val_split,
            seed=seed,
            jobs=jobs,
            strict=strict,
            subsets=_subsets(subsets),
            names_file=names_file,
            to=to,
            resplit=resplit,
            jpeg_quality=jpeg_quality,
        )
        from tlt_pipe.datasets.conversion import convert as run_convert  # noqa: PLC0415 - the heavy part

        report = run_convert(fmt.lower(), src, out, options, on_progress=progress)
    except click.ClickException:
        raise
    except TltPipeError as exc:
        raise ConvertError(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise ConvertError("interrupted; the output was left as it was", 130) from None
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("TLTPIPE_DEBUG"):
            raise
        raise ConvertError(f"internal error: {type(exc).__name__}: {exc} (TLTPIPE_DEBUG=1 shows the traceback)", 1) from None
    finally:
        progress.end()
    if not quiet:
        for line in report.summary_lines():
            click.echo(line)
