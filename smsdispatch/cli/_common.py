"""What every verb shares: the one-sentence error type and small argument helpers."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report as one sentence on stderr. ``exit_code`` 1 = operational, 2 = bad usage."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
