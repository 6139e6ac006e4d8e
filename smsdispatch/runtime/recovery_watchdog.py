"""A table recovery that stops making progress asks the group for a new generation instead of waiting forever.

After every rebalance Faust restores each table partition the worker keeps or gains, reading its changelog up to
the end it saw when recovery began, and hands no record of any source topic to the agents until all of them are
there. It waits without a bound. Seen once (CI, 2026-12-03, the opt-out suite, as a second worker joined): the
first worker's recovery of three ``tenants`` changelog partitions, two to four records each, received no record
for two minutes; the requests of its partitions were not handled until the test stopped the worker, and the
other worker, now owning them, restored them in 0.3 s. Why no record came is not established: the fetches went
on (Faust's fetch-path check logged nothing), and 30 runs of the same join here did not reproduce it.

:class:`RecoveryWatchdog` watches how many records recovery still has to read. When that count has not moved for
``stall_seconds`` while Kafka answers, it logs how each unfinished partition looks to the consumer (records left,
position, paused, last fetch, last record handed over) and asks the group to rebalance. The new generation starts a new
recovery from freshly sought positions and a fresh fetch state, and the rebalance interrupts a delivery that
blocks the fetch loop. While the stall lasts it asks again, each time after twice the wait before (up to
``max_wait_seconds``): every rebalance makes every worker drain, so a cause no rebalance cures must not cost the
group one every 15 s. Records read start the wait at ``stall_seconds`` again.

Guarantee: while Kafka answers, a recovery that stops reading is followed by a request to rebalance within about
``stall_seconds`` (plus one check interval); later requests for the same stall come after the growing waits above.
Limits: a cause that survives a new generation is not
cured, only logged at each ask, with the partitions it concerns. While the worker knows Kafka does not
answer, nothing is asked (a rebalance cannot help); it learns that from its broker probe, which runs once the first
recovery is over, so during a first recovery an outage costs a few harmless requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mode import Service

log = logging.getLogger("smsdispatch.recovery")


class RecoveryState(Protocol):
    """What the watchdog reads of Faust's ``Recovery`` service (``app.tables.recovery``)."""

    in_recovery: bool

    def active_remaining(self) -> Mapping[Any, int]:
        """Records left to read, by changelog partition the worker restores."""


class RecoveryWatchdog(Service):
    """Start and stop it with the app (``app.add_dependency``): unlike Faust's timers, which start only once the
    first recovery is over, it also watches that first one."""

    def __init__(
        self,
        recovery: Callable[[], RecoveryState],
        *,
        rejoin: Callable[[], None],
        reachable: Callable[[], bool],
        describe: Callable[[Any], str] = repr,
        stall_seconds: float = 15.0,
        max_wait_seconds: float = 300.0,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._recovery = recovery
        self._rejoin = rejoin
        self._reachable = reachable
        self._describe = describe
        self._stall_seconds = stall_seconds
        self._max_wait = max_wait_seconds
        #: How long the count must stay unchanged before the next ask: doubles with each ask, until records are read.
        self._wait = stall_seconds
        self._interval = interval
        self._clock = clock
        self._left: int | None = None
        self._unchanged_since = 0.0
        #: Rebalances asked for (tests read it).
        self.rejoins = 0

    async def on_start(self) -> None:
        self.add_future(self._watch())

    async def _watch(self) -> None:
        while not self.should_stop:
            try:
                self.check()
            except Exception:  # the watch must outlive a surprise in what it reads
                log.exception("checking table recovery failed")
            await self.sleep(self._interval)

    def check(self) -> bool:
        """Look once; returns True when it asked the group to rebalance."""
        now = self._clock()
        recovery = self._recovery()
        left = {tp: n for tp, n in recovery.active_remaining().items() if n > 0} if recovery.in_recovery else {}
        total = sum(left.values())
        if total == 0:
            self._left, self._wait = None, self._stall_seconds
            return False
        if total != self._left:  # progress, or a new recovery with a count of its own
            if self._left is not None and total < self._left:
                self._wait = self._stall_seconds  # records were read: whatever stalled, it moves again
            self._left, self._unchanged_since = total, now
            return False
        if now - self._unchanged_since < self._wait:
            return False
        self._unchanged_since = now  # whatever follows, the next look is a whole period away
        if not self._reachable():
            return False
        self.rejoins += 1
        partitions = "; ".join(f"{self._describe(tp)}, {left[tp]} left" for tp in sorted(left, key=str))
        log.warning(
            "table recovery read nothing for %.0fs, %d records left; asking the group to rebalance (%d so far): %s",
            self._wait, total, self.rejoins, partitions,
        )  # fmt: skip
        self._wait = min(self._wait * 2, self._max_wait)
        self._rejoin()
        return True
