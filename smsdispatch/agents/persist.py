"""The one "retry until Kafka (or the database) takes it" loop, with logging that stays readable in an outage.

Giving up is not an option for a write that an acknowledgement depends on: returning would let the record be
acked without its outcome, and raising would leave it to a caller that can only do the same. So a Kafka or
database outage stalls the record (and is visible), and a drain or shutdown cancels the wait; the record is
then given back unacked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ThrottledWarning:
    """One warning line per ``interval`` seconds for a repeating problem, with how often it happened since."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more like it in the last {self._interval:g}s)" if self._suppressed else ""
        self._logger.warning(message + extra, *args)
        self._last, self._suppressed = now, 0


async def until_taken(
    write: Callable[[], Awaitable[T]],
    warning: ThrottledWarning,
    what: str,
    *,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Call ``write`` until it succeeds (backing off up to ``max_delay``); cancellation ends it."""
    delay = first_delay
    while True:
        try:
            return await write()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            warning.warn("%s failed (%s); retrying until it succeeds", what, type(exc).__name__)
            await sleep(delay)
            delay = min(delay * 2, max_delay)
