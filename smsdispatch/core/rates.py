"""Each tenant's sending rate, in segments per second: requests beyond it wait their turn, never fail for it.

Twilio meters a sender in segments (a 3-segment SMS costs 3), queues what arrives faster, and fails it (30001,
21611) or delivers it hours late once the queue is long. :class:`SendingRates` keeps every tenant inside the
``mps`` of its TenantRecord on the worker that owns the tenant's partition (all of a tenant's requests are
dispatched there).

Guarantees, and their limits:

* **Spaced, not bursty.** A message costing ``n`` segments is released at least ``n / mps`` seconds after the
  one before it (virtual scheduling with no burst allowance), so no 1-second window holds more than ``mps``
  segments' worth of releases plus the one at its edge. The first message of an idle tenant goes at once.
* **First come, first served** per tenant, one lane per tenant: a throttled tenant never delays another; its
  waiting requests hold only pipeline room (``max_in_flight``), so a backlog larger than that does.
* **Rate changes apply to the waiting ones.** The rate is read from the tenant's current record at each release
  (and every half second of a wait), so ``tenants update --mps`` (or ``--no-mps``, which releases every waiting
  request) takes effect without a restart, also for requests already waiting.
* **Deadlines.** A request that has not had its turn ``within`` its time to live (``expires_at``) gives up its
  place and gets False: the caller fails it ``expired`` without sending.
* **Memory.** A lane exists per tenant that has requests waiting or was released less than one spacing ago.
* The pace is this worker's: after a rebalance the new owner starts a fresh lane, so the release right after a
  handover may come early by at most one spacing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: The tenant's rate now, in segments per second (None: unthrottled). Read at every release, so a change to the
#: tenant's record applies to the requests already waiting.
Rate = Callable[[], int | None]

#: The longest single sleep of a lane: a raised rate is noticed within this long.
_RECHECK_SECONDS = 0.5


@dataclass(eq=False)
class _Waiter:
    cost: int
    turn: asyncio.Future[None]


@dataclass(eq=False)
class _Lane:
    #: The rate as the latest request of this tenant reads it.
    rate: Rate
    #: The latest release (the clock's time) and its cost: the next may go ``cost / rate`` seconds after it.
    last_at: float = float("-inf")
    last_cost: int = 0
    waiting: deque[_Waiter] = field(default_factory=deque)
    pacer: asyncio.Task[None] | None = None

    def next_free(self) -> float:
        mps = self.rate()
        return float("-inf") if mps is None else self.last_at + self.last_cost / mps


class SendingRates:
    """Per-tenant pacing. ``clock`` and ``sleep`` are injectable so tests need not wait in real time."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lanes: dict[str, _Lane] = {}

    def waiting(self, tenant_id: str) -> int:
        """How many of the tenant's requests wait for their turn now."""
        lane = self._lanes.get(tenant_id)
        return sum(1 for waiter in lane.waiting if not waiter.turn.done()) if lane is not None else 0

    async def turn(self, tenant_id: str, rate: Rate, cost: int, within: float | None = None) -> bool:
        """Wait until a message of ``cost`` segments may go out for ``tenant_id`` at ``rate()`` segments/s.

        Returns True when it may be sent now, False when ``within`` seconds passed first (the request's time
        to live). A caller cancelled while waiting gives up its place.
        """
        lane = self._lanes.get(tenant_id)
        if lane is None:
            if rate() is None:
                return True  # unthrottled and never throttled: no state at all
            lane = self._lanes[tenant_id] = _Lane(rate)
        lane.rate = rate
        now = self._clock()
        if not lane.waiting and lane.next_free() <= now:
            self._released(lane, now, cost)
            return True
        if within is not None and within <= 0:
            return False
        waiter = _Waiter(max(cost, 1), asyncio.get_running_loop().create_future())
        lane.waiting.append(waiter)
        if lane.pacer is None or lane.pacer.done():
            lane.pacer = asyncio.create_task(self._pace(tenant_id, lane))
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(waiter.turn)
        except TimeoutError:
            if waiter.turn.done() and not waiter.turn.cancelled():
                return True  # its turn came in the same instant: take it rather than waste it
            waiter.turn.cancel()  # the pacer skips it: its place is not spent
            return False
        except asyncio.CancelledError:
            waiter.turn.cancel()
            raise
        return True

    async def _pace(self, tenant_id: str, lane: _Lane) -> None:
        """Release the lane's waiters one at a time, each when the one before it has had its spacing."""
        while lane.waiting:
            waiter = lane.waiting[0]
            if waiter.turn.done():  # gave up (deadline, cancellation)
                lane.waiting.popleft()
                continue
            now = self._clock()
            due = lane.next_free()
            if due > now:
                # In short steps, re-reading the rate: a raised (or removed) rate shortens the wait under way.
                await self._sleep(min(due - now, _RECHECK_SECONDS))
                continue
            lane.waiting.popleft()
            waiter.turn.set_result(None)
            self._released(lane, now, waiter.cost)
        if lane.next_free() <= self._clock() and self._lanes.get(tenant_id) is lane:
            del self._lanes[tenant_id]

    @staticmethod
    def _released(lane: _Lane, now: float, cost: int) -> None:
        # Counted from the actual release: a pacer woken late makes the pace a little slower, never faster.
        lane.last_at = now
        lane.last_cost = cost
