"""Pipeline: records start at once, are acked in offset order per partition, and a drain finishes or gives back."""

from __future__ import annotations

import asyncio

import pytest

from smsdispatch.core.pipeline import Pipeline, Work

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []
        self.released: list[tuple[int, int]] = []

    async def ack(self, token: tuple[int, int]) -> None:
        self.acked.append(token)

    def release(self, token: tuple[int, int]) -> None:
        self.released.append(token)

    def pipeline(self, max_pending: int = 100) -> Pipeline[tuple[int, int]]:
        return Pipeline(ack=self.ack, release=self.release, max_pending=max_pending)


def gated(gate: asyncio.Event, *, irrevocable: bool = False, log: list[int] | None = None, tag: int = 0):  # type: ignore[no-untyped-def]
    async def handler(work: Work[tuple[int, int]]) -> None:
        if irrevocable:
            work.irrevocable()
        if log is not None:
            log.append(tag)
        await gate.wait()

    return handler


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_record_finished_before_an_earlier_one_is_acked_only_after_it() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline()
    slow, fast = asyncio.Event(), asyncio.Event()
    await pipeline.submit(0, 10, (0, 10), gated(slow))
    await pipeline.submit(0, 11, (0, 11), gated(fast))
    fast.set()
    await settle()
    assert recorder.acked == []

    slow.set()
    await settle()

    assert recorder.acked == [(0, 10), (0, 11)]


async def test_a_slow_record_holds_back_only_its_own_partitions_acks() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline()
    slow, fast = asyncio.Event(), asyncio.Event()
    await pipeline.submit(0, 10, (0, 10), gated(slow))
    await pipeline.submit(1, 5, (1, 5), gated(fast))
    fast.set()
    await settle()

    assert recorder.acked == [(1, 5)]


async def test_records_with_the_same_key_run_one_after_the_other_in_order() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline()
    first_gate, started = asyncio.Event(), []
    await pipeline.submit(0, 1, (0, 1), gated(first_gate, log=started, tag=1), key="k")
    await pipeline.submit(0, 2, (0, 2), gated(asyncio.Event(), log=started, tag=2), key="k")
    await settle()
    assert started == [1]

    first_gate.set()
    await settle()

    assert started == [1, 2]


async def test_a_handler_that_raises_leaves_its_record_unacked_and_blocks_later_acks() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline()

    async def broken(work: Work[tuple[int, int]]) -> None:
        raise RuntimeError("a bug")

    await pipeline.submit(0, 1, (0, 1), broken)
    done = asyncio.Event()
    done.set()
    await pipeline.submit(0, 2, (0, 2), gated(done))
    await settle()

    assert recorder.acked == []
    acked, released = await pipeline.drain(1.0)
    assert (acked, released) == (0, 2)
    assert recorder.released == [(0, 1), (0, 2)]


async def test_a_drain_waits_for_irrevocable_records_and_gives_back_the_rest() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline()
    sending = asyncio.Event()
    await pipeline.submit(0, 1, (0, 1), gated(sending, irrevocable=True))
    await pipeline.submit(0, 2, (0, 2), gated(asyncio.Event()))  # waiting for its turn: nothing done yet
    await settle()
    asyncio.get_running_loop().call_later(0.05, sending.set)

    acked, released = await pipeline.drain(5.0)

    assert (acked, released) == (1, 1)
    assert recorder.acked == [(0, 1)]
    assert recorder.released == [(0, 2)]
    assert len(pipeline) == 0


async def test_a_drain_gives_back_an_irrevocable_record_still_running_at_the_deadline() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline()
    await pipeline.submit(0, 1, (0, 1), gated(asyncio.Event(), irrevocable=True))
    await settle()

    acked, released = await pipeline.drain(0.05)

    assert (acked, released) == (0, 1)
    assert recorder.acked == []


async def test_a_submit_waiting_for_room_across_a_drain_gives_its_record_back() -> None:
    recorder = Recorder()
    pipeline = recorder.pipeline(max_pending=1)
    await pipeline.submit(0, 1, (0, 1), gated(asyncio.Event()))
    waiting = asyncio.create_task(pipeline.submit(0, 2, (0, 2), gated(asyncio.Event())))
    await settle()

    await pipeline.drain(1.0)
    await waiting

    assert recorder.released == [(0, 1), (0, 2)]
    assert len(pipeline) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_stalled_for_counts_from_the_first_record_held_and_restarts_when_one_finishes() -> None:
    clock = Clock()
    recorder = Recorder()
    pipeline = Pipeline(ack=recorder.ack, max_pending=10, clock=clock)
    clock.now += 500  # idle for a long time: nothing held, nothing stalled
    assert pipeline.stalled_for() == 0.0
    slow, fast = asyncio.Event(), asyncio.Event()
    await pipeline.submit(0, 1, (0, 1), gated(slow))
    await pipeline.submit(1, 1, (1, 1), gated(fast))
    clock.now += 30
    assert pipeline.stalled_for() == 30

    fast.set()
    await settle()
    clock.now += 7

    assert len(pipeline) == 1
    assert pipeline.stalled_for() == 7, "one finished 7 s ago"
    slow.set()
    await settle()
    assert (len(pipeline), pipeline.stalled_for()) == (0, 0.0)


async def test_a_drain_leaves_nothing_held_and_nothing_stalled() -> None:
    clock = Clock()
    recorder = Recorder()
    pipeline = Pipeline(ack=recorder.ack, release=recorder.release, max_pending=10, clock=clock)
    await pipeline.submit(0, 1, (0, 1), gated(asyncio.Event()))
    clock.now += 100

    await pipeline.drain(0.1)

    assert (len(pipeline), pipeline.stalled_for()) == (0, 0.0)
