"""Per-tenant sending rates: spaced releases in segments, first come first served, deadlines, live rate changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from smsdispatch.core.rates import SendingRates


class FakeTime:
    """A monotonic clock that moves only by the rates' own sleeps (so releases happen at exact times)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Several turns of the loop first: whoever was just released runs (and reads the clock) before it moves.
        for _ in range(5):
            await asyncio.sleep(0)
        self.now += seconds


class StuckTime(FakeTime):
    """A clock whose sleeps never end: whoever waits for a release waits until something else happens."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


def fixed(mps: int | None) -> Callable[[], int | None]:
    return lambda: mps


async def release_times(rates: SendingRates, time: FakeTime, costs: list[int], mps: int) -> list[float]:
    times: list[float] = []

    async def one(cost: int) -> None:
        assert await rates.turn("acme", fixed(mps), cost)
        times.append(time.now)

    await asyncio.gather(*(one(cost) for cost in costs))
    return times


@pytest.mark.asyncio
async def test_single_segment_messages_are_released_one_spacing_apart_starting_at_once() -> None:
    time = FakeTime()
    rates = SendingRates(time.clock, time.sleep)

    times = await release_times(rates, time, [1] * 6, mps=5)

    assert times == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.asyncio
async def test_a_long_message_uses_one_spacing_per_segment() -> None:
    time = FakeTime()
    rates = SendingRates(time.clock, time.sleep)

    times = await release_times(rates, time, [3, 1, 1], mps=2)

    assert times == pytest.approx([0.0, 1.5, 2.0])


@pytest.mark.asyncio
async def test_no_one_second_window_holds_more_releases_than_the_rate() -> None:
    time = FakeTime()
    rates = SendingRates(time.clock, time.sleep)

    times = await release_times(rates, time, [1] * 60, mps=5)

    assert times[-1] == pytest.approx(11.8)
    for start in times:
        assert sum(1 for moment in times if start <= moment < start + 1 - 1e-9) <= 5


@pytest.mark.asyncio
async def test_a_throttled_tenant_never_delays_another_tenant() -> None:
    time = StuckTime()
    rates = SendingRates(time.clock, time.sleep)
    assert await rates.turn("slow", fixed(1), 1)
    waiting = [asyncio.create_task(rates.turn("slow", fixed(1), 1)) for _ in range(50)]
    await asyncio.sleep(0)

    assert await asyncio.wait_for(rates.turn("fast", fixed(1), 1), 0.5)
    assert await asyncio.wait_for(rates.turn("unthrottled", fixed(None), 1), 0.5)
    assert rates.waiting("slow") == 50
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_request_whose_deadline_comes_first_gives_up_and_its_place_goes_to_the_next() -> None:
    time = StuckTime()
    rates = SendingRates(time.clock, time.sleep)
    assert await rates.turn("acme", fixed(1), 1)

    assert await rates.turn("acme", fixed(1), 1, within=0.05) is False
    assert await rates.turn("acme", fixed(1), 1, within=0.0) is False
    assert rates.waiting("acme") == 0


@pytest.mark.asyncio
async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    time = StuckTime()
    rates = SendingRates(time.clock, time.sleep)
    assert await rates.turn("acme", fixed(1), 1)
    task = asyncio.create_task(rates.turn("acme", fixed(1), 1))
    await asyncio.sleep(0.01)
    assert rates.waiting("acme") == 1

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert rates.waiting("acme") == 0


class TenantRecordRate:
    """The rate as the tenant's current record says; the test changes it as ``tenants update`` would."""

    def __init__(self, mps: int | None) -> None:
        self.mps = mps

    def __call__(self) -> int | None:
        return self.mps


@pytest.mark.asyncio
async def test_removing_the_rate_releases_every_waiting_request_without_a_restart() -> None:
    time = FakeTime()
    rate = TenantRecordRate(1)
    rates = SendingRates(time.clock, time.sleep)
    assert await rates.turn("acme", rate, 1)
    waiting = [asyncio.create_task(rates.turn("acme", rate, 1)) for _ in range(5)]
    await asyncio.sleep(0)

    rate.mps = None  # tenants update --no-mps

    assert await asyncio.wait_for(asyncio.gather(*waiting), 1) == [True] * 5
    assert time.now <= 0.5, "released at the next look at the rate, not one spacing each"


@pytest.mark.asyncio
async def test_a_raised_rate_applies_to_requests_already_waiting() -> None:
    time = FakeTime()
    rate = TenantRecordRate(1)
    rates = SendingRates(time.clock, time.sleep)
    assert await rates.turn("acme", rate, 1)
    waiting = [asyncio.create_task(rates.turn("acme", rate, 1)) for _ in range(3)]
    await asyncio.sleep(0)

    rate.mps = 10  # tenants update --mps 10, while they wait

    assert await asyncio.gather(*waiting) == [True] * 3
    assert time.now == pytest.approx(0.3), "the new spacing (0.1s) from the first release on, not 1s each"
