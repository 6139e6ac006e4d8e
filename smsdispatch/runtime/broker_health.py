"""Whether the worker reaches Kafka, for ``/health``, and a few log lines about it instead of thousands.

A metadata request on the producer's own connection every few seconds answers the question the way the
worker experiences it. While Kafka is away the worker logs one warning when it goes, one per ``remind_every``
seconds with how long and how many probes failed, and one line when it is back; the Kafka clients' own
repetitions are held back by the worker's log throttle (``smsdispatch.cli._logging``). Nothing else changes
during an outage: writes wait and retry, reading resumes on its own, and no record is committed unprocessed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("smsdispatch.broker")


class BrokerHealth:
    def __init__(
        self,
        probe: Callable[[], Awaitable[Any]],
        *,
        timeout: float = 5.0,
        remind_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._timeout = timeout
        self._remind_every = remind_every
        self._clock = clock
        self._down_since: float | None = None
        self._failed_probes = 0
        self._reminded_at = 0.0

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    async def check(self) -> bool:
        """Probe once (bounded by ``timeout``); log a change of state; return whether Kafka answered."""
        try:
            await asyncio.wait_for(self._probe(), self._timeout)
        except Exception as exc:
            self._failed(exc)
            return False
        if self._down_since is not None:
            log.info("Kafka is reachable again after %.0fs", self._clock() - self._down_since)
        self._down_since = None
        self._failed_probes = 0
        return True

    def _failed(self, exc: Exception) -> None:
        now = self._clock()
        self._failed_probes += 1
        if self._down_since is None:
            self._down_since = self._reminded_at = now
            log.warning("Kafka is unreachable (%s); writes wait and retry until it is back", type(exc).__name__)
        elif now - self._reminded_at >= self._remind_every:
            self._reminded_at = now
            log.warning(
                "Kafka still unreachable after %.0fs (%d probes failed)", now - self._down_since, self._failed_probes
            )

    def report(self) -> dict[str, object]:
        """For ``/health``: ``{"reachable": true}``, or how long it has been away and how many probes failed."""
        if self._down_since is None:
            return {"reachable": True}
        return {
            "reachable": False,
            "unreachable_seconds": round(self._clock() - self._down_since, 1),
            "failed_probes": self._failed_probes,
        }
