"""One status line that rewrites itself on a terminal ("outcomes 12/20"), and stays quiet in a log file.

Plain text and carriage returns, no dependency: on a terminal each update overwrites the line; when the output
is a file or a pipe (CI, tests) only the final state of each line is written, so logs hold no clutter.
"""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressLine:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._live = self._stream.isatty()
        self._text = ""
        self._width = 0

    def update(self, text: str) -> None:
        self._text = text
        if self._live:
            self._stream.write("\r" + text.ljust(self._width))
            self._stream.flush()
            self._width = max(self._width, len(text))

    def done(self, text: str | None = None) -> None:
        """Finish the line with ``text`` (or the last update) and a newline."""
        if text is not None:
            self._text = text
        if self._live:
            self._stream.write("\r" + self._text.ljust(self._width) + "\n")
        else:
            self._stream.write(self._text + "\n")
        self._stream.flush()
        self._text, self._width = "", 0
