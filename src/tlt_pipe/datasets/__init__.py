"""Dataset converters: CRPD, CCPD, YOLO, VOC, OpenALPR and KITTI sources to TAO's KITTI
layout (or the PyTorch SSD VOC layout, or COCO JSON for RT-DETR and DINO), with class
remapping, resizing and a stratified train/val split.

    from tlt_pipe.datasets import convert, ConvertOptions
    report = convert("crpd", Path("data/CRPD"), Path("work/kitti"), ConvertOptions(resize=(960, 544)))
    print("\\n".join(report.summary_lines()))
"""

from importlib import import_module

# Loaded on first use, so that importing one light module of the package (options, for the
# command line) does not load every converter.
_EXPORTS = {"convert": "conversion", "FORMATS": "formats", "ConvertOptions": "options", "ConvertReport": "report",
            "Tally": "report"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
