"""What scanners and label loaders need to know about the source being converted."""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

from tlt_pipe.datasets import discover
from tlt_pipe.datasets.options import ConvertOptions
from tlt_pipe.datasets.records import UNLISTABLE, Issue
from tlt_pipe.regular_file import open_regular


@dataclass(frozen=True)
class SourceContext:
    src: Path  # absolute source root
    display: str  # the source root as the user wrote it, for messages
    options: ConvertOptions
    names: tuple[str, ...] = ()  # YOLO class names, index -> name

    def path(self, rel: str) -> str:
        """The file at rel as a string path (cheaper than Path for per-image work)."""
        return os.path.join(os.fspath(self.src), rel)

    def where(self, rel: str, line: int | None = None) -> str:
        """`<src as given>/<rel>[:line]`, the location shown in reports and errors."""
        shown = rel if self.display in ("", ".") else f"{self.display.rstrip('/')}/{rel}"
        return f"{shown}:{line}" if line else shown

    def unlisted(self, error: discover.Unlistable, subset: str) -> Issue:
        """A folder below the source root that cannot be listed, as an issue for the report; the
        error itself when it is (in) a subset that --subsets names."""
        if self.options.subsets and self.options.wants(subset):
            raise error
        return Issue(UNLISTABLE, self.where(discover.rel(error.path, self.src)), error.detail)

    def read_text(self, rel: str) -> str:
        """A label file as text: UTF-16 when it starts with its BOM or is a quarter NUL bytes or more (Windows
        tools save so; read as UTF-8 or GB18030 its objects were lost), else UTF-8 (a BOM is dropped), then
        GB18030, never an exception for encoding (undecodable bytes become U+FFFD)."""
        with open_regular(self.path(rel)) as handle:
            data = handle.read()
        if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return data.decode("utf-16", errors="replace")
        if data.count(b"\0") * 4 >= len(data) > 0 and not len(data) % 2:  # UTF-16 text: NULs all through it
            for encoding in ("utf-16-le", "utf-16-be"):
                try:
                    text = data.decode(encoding)
                except UnicodeDecodeError:
                    continue
                if "\0" not in text:
                    return text
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
        return data.decode("utf-8", errors="replace")
