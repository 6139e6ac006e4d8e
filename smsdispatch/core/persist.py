"""The one "retry until Kafka (or the database) takes it" loop, with logging that stays readable in an outage.

Giving up on an outage is not an option for a write that an acknowledgement depends on: returning would let the
record be acked without its outcome. So a Kafka or database outage stalls the record (and is visible), and a
drain or shutdown cancels the wait; the record is then given back unacked. An error retrying cannot cure (a
record Kafka refuses as too large, a bug) is raised instead, and the dispatcher makes it that record's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaTimeoutError

T = TypeVar("T")


class ThrottledWarning:
    """One warning line per ``interval`` seconds for a repeating problem, with how often it happened since."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, message: str, *args: Any, level: int = logging.WARNING) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more like it in the last {self._interval:g}s)" if self._suppressed else ""
        self._logger.log(level, message + extra, *args)
        self._last, self._suppressed = now, 0


async def until_taken(
    write: Callable[[], Awaitable[T]],
    warning: ThrottledWarning,
    what: str,
    *,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    refusals: int = 1,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``write`` until it succeeds (backing off up to ``max_delay``); cancellation ends it. An error that
    retrying cannot cure (:func:`worth_retrying`) is raised once it happened ``refusals`` times (1: at once), for
    the caller to turn into an outcome or to narrow the write down. ``on_failure`` sees every failure (metrics)."""
    delay = first_delay
    refused = 0
    while True:
        try:
            return await write()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if on_failure is not None:
                on_failure(exc)
            curable = worth_retrying(exc)
            refused += 0 if curable else 1
            if refused >= refusals:
                raise
            level = logging.WARNING if curable else logging.ERROR
            warning.warn("%s failed (%s); retrying in %.1fs", what, exc, delay, level=level)
            await sleep(delay)
            delay = min(delay * 2, max_delay)


def worth_retrying(exc: BaseException) -> bool:
    """Whether ``exc`` can go away by itself: an outage, not a verdict on the write.

    Kafka's errors say so themselves (aiokafka's ``retriable``), except that a send that timed out
    (``KafkaTimeoutError``) is flagged permanent while it is exactly what a broker outage looks like. A record the
    broker refuses for what it is (too large, invalid) is not retried, and neither is a programming error
    (``TypeError``, ``ValueError``...): retrying either would stall its partition forever. Anything else (a
    driver's own exceptions, a test's fakes) is retried, as an acknowledgement depends on it.
    """
    if isinstance(exc, KafkaTimeoutError):
        return True
    # aiokafka says ``retriable``; the storage layer's errors (like the providers') say ``retryable``.
    flag = getattr(exc, "retriable", getattr(exc, "retryable", None))
    if isinstance(flag, bool):
        return flag
    return not isinstance(exc, (TypeError, ValueError, AttributeError, KeyError, IndexError, AssertionError))
