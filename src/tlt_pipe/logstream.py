"""Turn raw terminal output into log lines.

A TAO container writes to a terminal: lines end with ``\\r\\n`` and Keras redraws its
progress bar in place with backspaces and a carriage return::

    12/85 [===>..........................] - ETA: 15s - loss: 2.1\\b\\b\\b...\\r13/85 [====>...

Written to a file as is, one epoch becomes hundreds of overwritten states. ``LineSplitter``
applies the little of a terminal's line discipline that matters here and reports two kinds
of ``Line``:

- a complete line (``partial=False``): what the terminal shows when the line ends, i.e. the
  final state of a line redrawn with ``\\r``. This is what goes to the log file.
- a progress update (``partial=True``): the current state of a line that is being redrawn
  with ``\\r`` and has not ended yet, reported at most once per chunk fed and only when it
  changed. A live display may show it; it is never logged.

A ``\\r`` replaces the line with the text that follows it (not a character-by-character
overwrite: the producer means its new text, not a mix of old and new). ``\\r\\n`` and
``\\r\\r\\n`` end a line like ``\\n``. ``\\b`` removes the previous character of the line.
Bytes are decoded as UTF-8 incrementally, so a character split across chunks survives;
undecodable bytes become U+FFFD. Pure: no I/O.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import IO

from tlt_pipe.runners.base import Cancelled
from tlt_pipe.secrets import redact

_CONTROL = re.compile(r"([\r\n\b])")


@dataclass(frozen=True)
class Line:
    text: str
    partial: bool = False  # True: an in-place progress update, not a finished line


class LineSplitter:
    """Feed chunks of output in order; get back complete lines and progress updates."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf: list[str] = []  # pieces of the current line
        self._at_cr = False  # a \r was seen and not yet resolved (line end or redraw)
        self._redrawn = False  # the current line was redrawn at least once
        self._last_progress: str | None = None

    def feed(self, data: bytes | str) -> list[Line]:
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        out: list[Line] = []
        for token in _CONTROL.split(text):
            if not token:
                continue
            if token == "\n":
                out.append(Line("".join(self._buf)))
                self._reset_line()
            elif token == "\r":
                self._at_cr = True
            elif token == "\b":
                if not self._at_cr:
                    self._backspace()
            else:
                if self._at_cr:
                    self._buf = []
                    self._at_cr = False
                    self._redrawn = True
                self._buf.append(token)
        if self._redrawn:
            current = "".join(self._buf)
            if current and current != self._last_progress:
                out.append(Line(current, partial=True))
                self._last_progress = current
        return out

    def close(self) -> list[Line]:
        """End of output: the unfinished line, if any, in its final state."""
        out = self.feed(self._decoder.decode(b"", final=True))
        out = [line for line in out if not line.partial]
        if self._buf:
            out.append(Line("".join(self._buf)))
        self._reset_line()
        return out

    def _backspace(self) -> None:
        while self._buf:
            last = self._buf.pop()
            if len(last) > 1:
                self._buf.append(last[:-1])
                return
            if last:
                return

    def _reset_line(self) -> None:
        self._buf = []
        self._at_cr = False
        self._redrawn = False
        self._last_progress = None


def follow(log_path: Path, offset: int, done: Callable[[], bool], secrets: list[str],
           on_line: Callable[[str], None] | None, poll_s: float, cancel: Event | None = None) -> None:
    """Hand every complete line a job appends to its log (from offset) to on_line, redacted, until done()
    says the job has ended and the log is read to its end. Raises Cancelled once cancel is set (the
    caller stops the job as it would on Ctrl-C)."""
    splitter = LineSplitter()
    with open(log_path, "rb") as log:
        log.seek(offset)
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            finished = done()
            chunk = log.read()
            for line in splitter.feed(chunk) if chunk else []:
                if on_line is not None and not line.partial:
                    on_line(redact(line.text, secrets))  # the job redacted the log; guard the console too
            if finished and not chunk:
                return
            if not chunk:
                if cancel is not None:
                    cancel.wait(poll_s)
                else:
                    time.sleep(poll_s)


def deliver(
    lines: list[Line],
    log_file: IO[str],
    secrets: list[str],
    on_line: Callable[[str], None] | None,
    on_progress: Callable[[str], None] | None,
) -> None:
    """Log the complete lines first (so a callback that raises loses nothing), then call back."""
    texts = [(redact(line.text, secrets), line.partial) for line in lines]
    complete = [text for text, partial in texts if not partial]
    if complete:
        log_file.write("".join(text + "\n" for text in complete))
        log_file.flush()
    for text, partial in texts:
        if partial:
            if on_progress is not None:
                on_progress(text)
        elif on_line is not None:
            on_line(text)
