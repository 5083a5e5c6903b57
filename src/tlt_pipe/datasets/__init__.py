"""Dataset converters: CRPD, CCPD, YOLO, VOC, OpenALPR and KITTI sources to TAO's KITTI
layout (or the PyTorch SSD VOC layout), with class remapping, resizing and a stratified
train/val split.

    from tlt_pipe.datasets import convert, ConvertOptions
    report = convert("crpd", Path("data/CRPD"), Path("work/kitti"), ConvertOptions(resize=(960, 544)))
    print("\\n".join(report.summary_lines()))
"""

from tlt_pipe.datasets.convert import convert
from tlt_pipe.datasets.formats import FORMATS
from tlt_pipe.datasets.options import ConvertOptions
from tlt_pipe.datasets.report import ConvertReport, Tally

__all__ = ["FORMATS", "ConvertOptions", "ConvertReport", "Tally", "convert"]
