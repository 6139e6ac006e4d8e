"""When to try a Twilio request again: exponential backoff with full jitter, bounded in attempts and time.

Only errors whose ``retryable`` is true are retried (429, and connections that failed before anything was
sent); what is retryable is decided where the error is raised, never here and never from its message. A
``Retry-After`` from Twilio is honoured as the delay, but never past the elapsed-time budget: when the wait
would overrun it, the error is raised at once so the caller can reschedule instead of blocking.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from smsdispatch.adapters.sms.errors import ProviderError, RateLimited

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry. ``sleep``, ``clock`` and ``jitter`` (uniform in [0, 1)) are injectable, so tests
    never really wait.

    The n-th retry waits a uniformly random time in ``[0, min(max_delay, base_delay * 2**(n-1))]`` ("full
    jitter": many workers hitting one account's 429 spread out instead of retrying in lockstep).
    """

    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_elapsed: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_elapsed < 0:
            raise ValueError("delays and max_elapsed must not be negative")

    def backoff(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return self.jitter() * ceiling

    async def run(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Call ``attempt(1)``, ``attempt(2)``, ... until one returns or its error is not to be retried.

        The error that ends the loop is re-raised with ``attempts`` set to the number of calls made.
        """
        started = self.clock()
        number = 1
        while True:
            try:
                return await attempt(number)
            except ProviderError as error:
                error.attempts = number
                if not error.retryable or number >= self.max_attempts:
                    raise
                delay = self.backoff(number, error.retry_after if isinstance(error, RateLimited) else None)
                if self.clock() - started + delay > self.max_elapsed:
                    raise
            await self.sleep(delay)
            number += 1
