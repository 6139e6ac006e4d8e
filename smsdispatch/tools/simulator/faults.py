"""Which creates misbehave: faults injected for tests (deterministic) and the random ``fail_rate`` share.

The three random failures are the ones a client must tell apart (docs/reference/twilio.md, "What is safe to
retry"): a 500 before anything was accepted, a 500 after the message was accepted, and a connection cut after
the message was accepted. ``fail_rate`` splits evenly between them.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Literal, cast, get_args

FaultMode = Literal["rate_limit", "error_500_before_accept", "error_500_after_accept", "drop_after_accept"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)

_RANDOM_FAILURES: tuple[FaultMode, ...] = (
    "error_500_before_accept",
    "error_500_after_accept",
    "drop_after_accept",
)


class FaultPlan:
    """Hands out the fault, if any, for each create in the order creates arrive."""

    def __init__(self, fail_rate: float, rng: random.Random) -> None:
        self._fail_rate = fail_rate
        self._rng = rng
        self._pending: deque[FaultMode] = deque()
        #: Account SID -> monotonic time until which every create on that account answers 429.
        self._storms: dict[str, float] = {}

    def storm(self, account_sid: str, seconds: float) -> None:
        """Answer every create on ``account_sid`` with 429 for ``seconds`` (other accounts are unaffected)."""
        self._storms[account_sid] = time.monotonic() + seconds

    def inject(self, mode: FaultMode, count: int) -> None:
        """Make the next ``count`` creates fail with ``mode`` (after any faults already pending)."""
        self._pending.extend([mode] * count)

    def clear(self) -> None:
        self._pending.clear()
        self._storms.clear()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def next_create_fault(self, account_sid: str | None = None) -> FaultMode | None:
        until = self._storms.get(account_sid) if account_sid is not None else None
        if until is not None and time.monotonic() < until:
            return "rate_limit"
        if self._pending:
            return self._pending.popleft()
        if self._fail_rate and self._rng.random() < self._fail_rate:
            return self._rng.choice(_RANDOM_FAILURES)
        return None


def parse_fault_mode(value: object) -> FaultMode | None:
    """``value`` as a fault mode, or None when it is not one."""
    return cast("FaultMode", value) if value in FAULT_MODES else None
