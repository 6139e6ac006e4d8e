"""The worker's consumer hands every record of a partition to the streams, from the committed offset, once, through
the interleavings that lost records before (issue 24; ../shared/reference/faust-races.md F-2, F-3, F-5).

The real :class:`~smsdispatch.runtime.kafka_clients.RewindingConsumer` (its fetch loop, ``perform_seek``,
``_getmany``) with Faust's own ``on_partitions_revoked`` / ``on_partitions_assigned`` and flow control, on a fake
Kafka that behaves as aiokafka does where it matters: a fetch moves the position past what it returns, whatever
Faust then does with it (F-3); a new assignment starts at the committed offset (F-7). The rebalance follows Faust's
order for an app without tables (recovery.py 306-330: the flow stays stopped through the seek). Each
interleaving is forced with a held future, not left to timing. (How the holes happened with Faust's tables is in
the closing note of issue 24: HA2, records queued after the seek wiped by recovery's queue clear, and HA1.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.app import create_app
from smsdispatch.runtime.kafka_clients import RewindingConsumer

pytestmark = pytest.mark.asyncio

TOPIC = "sms.requested"
P0, P1 = TP(TOPIC, 0), TP(TOPIC, 1)


class FakeKafka:
    """One consumer's view of two partitions, as aiokafka keeps it: a log, a position, a committed offset."""

    def __init__(self) -> None:
        self.logs: dict[TP, int] = {P0: 20, P1: 0}  # how many records each partition holds (offsets 0..n-1)
        self.position: dict[TP, int] = {P0: 0, P1: 0}
        self.committed: dict[TP, int | None] = {P0: None, P1: None}
        self.assigned: set[TP] = {P0, P1}
        self.fetched = asyncio.Event()  # set after every fetch that returned records
        #: Offsets a fetch returns but Faust's getmany then drops (a paused partition, a batch cut short: F-3).
        self.dropped: set[tuple[TP, int]] = set()
        self.seeks: list[tuple[TP, int]] = []

    def assign(self) -> None:
        """A new assignment: aiokafka resets every assigned partition to its committed offset (F-7)."""
        for tp in self.assigned:
            self.position[tp] = self.committed[tp] or 0

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> dict[TP, list[Any]]:
        await asyncio.sleep(0.001)
        batch: dict[TP, list[Any]] = {}
        for tp in sorted(self.assigned):
            if active_partitions is not None and tp not in active_partitions:
                continue
            start, end = self.position[tp], self.logs[tp]
            if start < end:
                batch[tp] = [record(tp, o) for o in range(start, end) if (tp, o) not in self.dropped]
                self.dropped -= {(tp, o) for o in range(start, end)}
                self.position[tp] = end  # past every record fetched, dropped ones too
        if batch:
            self.fetched.set()
        return batch

    async def seek_to_committed(self) -> dict[TP, int | None]:
        """aiokafka's: a partition never committed, or committed at 0, is not sought (aiokafka#1003)."""
        committed: dict[TP, int | None] = {}
        for tp in sorted(self.assigned):
            await asyncio.sleep(0)
            offset = committed[tp] = self.committed[tp]
            if offset:
                self.position[tp] = offset
        return committed

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        await asyncio.sleep(0)
        self.seeks += partitions.items()
        self.position.update(partitions)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)


def record(tp: TP, offset: int) -> Any:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


class Harness:
    """A RewindingConsumer of a real app on a FakeKafka, its fetch loop running, delivering into a list."""

    def __init__(self, consumer: RewindingConsumer, kafka: FakeKafka) -> None:
        self.consumer, self.kafka, self.app = consumer, kafka, consumer.app
        #: (generation, partition, offset) of each record handed over to the streams.
        self.delivered: list[tuple[int, int, int]] = []
        #: A delivery of this (tp, offset) blocks (a full stream buffer) until cancelled; ``blocked`` says so.
        self.block_at: tuple[TP, int] | None = None
        self.blocked = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

        async def on_message(message: Any) -> None:
            if self.block_at == (message.tp, message.offset):
                self.blocked.set()
                await asyncio.Event().wait()
            self.delivered.append((message.generation_id, message.partition, message.offset))

        async def app_revoked(revoked: set[TP]) -> None:
            # Faust's App._on_partitions_revoked: stop the flow, suspend the queues, pause, drain.
            consumer.stop_flow()
            self.app.flow_control.suspend()
            consumer.pause_partitions(revoked)
            await asyncio.sleep(0.05)  # the drain: the fetch loop runs meanwhile

        async def app_assigned(assigned: set[TP], generation_id: int = 0) -> None:
            consumer.pause_partitions(assigned)

        #: Faust's consumer thread, never started: its event loop is closed at the end.
        self.thread_loop = consumer._thread.thread_loop
        consumer.callback = on_message
        consumer._on_partitions_revoked = app_revoked
        consumer._on_partitions_assigned = app_assigned
        consumer._thread = SimpleNamespace(getmany=kafka.getmany)  # type: ignore[assignment]
        consumer.seek_to_committed = kafka.seek_to_committed  # type: ignore[method-assign]
        consumer.seek_wait = kafka.seek_wait  # type: ignore[method-assign]
        consumer.earliest_offsets = kafka.earliest_offsets  # type: ignore[method-assign]
        consumer.highwater = lambda tp: kafka.logs[tp]  # type: ignore[method-assign]
        consumer.assignment = lambda: set(kafka.assigned)  # type: ignore[method-assign]

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.consumer._drain_messages(SimpleNamespace(_stopped=asyncio.Event())))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.thread_loop.close()

    def offsets(self, generation: int, partition: int = 0) -> list[int]:
        return [o for g, p, o in self.delivered if g == generation and p == partition]

    async def rebalance(self, generation: int, *, flow_before_seek: bool = False) -> None:
        """Faust's assignment and recovery without tables (recovery.py 306-330): the stream partitions resume and
        are sought while the flow stays stopped; then the queues are cleared and the flow resumes. With
        ``flow_before_seek``, the order Faust's table recovery used (recovery.py 448-452, 649-659): the flow
        resumes first, and records fetched meanwhile are handed over while the seek runs."""
        self.app.rebalancing = True
        self.app.consumer_generation_id = generation
        self.kafka.assign()
        await self.consumer.on_partitions_assigned({P0, P1}, generation)
        self.consumer.resume_partitions({P0, P1})
        if flow_before_seek:
            self.consumer.resume_flow()
            await self.fetched()
        await asyncio.wait_for(self.consumer.perform_seek(), 5)
        self.app.flow_control.resume()
        self.consumer.resume_flow()
        self.app.rebalancing = False

    async def fetched(self, log_end: int | None = None) -> None:
        """Let the fetch loop take what the log holds (up to ``log_end`` on p0) and hand it over."""
        if log_end is not None:
            self.kafka.logs[P0] = log_end
        self.kafka.fetched.clear()
        await asyncio.wait_for(self.kafka.fetched.wait(), 5)
        await asyncio.sleep(0.05)


async def harness(tmp_path: Path) -> Harness:
    app = create_app(Settings(broker="kafka://127.0.0.1:9", data_dir=str(tmp_path))).app
    consumer = RewindingConsumer(
        app.transport,
        callback=lambda message: None,
        on_partitions_revoked=None,
        on_partitions_assigned=None,
        beacon=app.beacon,
        loop=asyncio.get_running_loop(),
    )
    app._consumer = consumer  # what app.consumer returns
    app.on_rebalance_start = lambda: None
    return Harness(consumer, FakeKafka())


@pytest.mark.parametrize("flow_before_seek", [False, True], ids=["faust-order-without-tables", "table-recovery-order"])
async def test_a_delivery_cancelled_by_a_revocation_writes_nothing_into_the_next_generation(
    tmp_path: Path, flow_before_seek: bool
) -> None:
    """F-5 (HA1): record 5's delivery blocks; the revocation cancels it. Faust's loop then wrote p0's read offset 5
    back after the revocation had removed it, and in table recovery's order (records handed over before the
    seek) generation 2 dropped 2, 3, 4 (below it) and delivered from 5; the seek then left them behind."""
    h = await harness(tmp_path)
    await h.rebalance(1)
    h.block_at = (P0, 5)
    h.start()
    await asyncio.wait_for(h.blocked.wait(), 5)
    assert h.offsets(1) == [0, 1, 2, 3, 4]
    h.kafka.committed[P0] = 2  # the pipeline finished 0 and 1; 2..4 were given back by the drain

    await h.consumer.on_partitions_revoked({P0, P1})
    h.block_at = None
    h.kafka.logs[P0] = 25
    await h.rebalance(2, flow_before_seek=flow_before_seek)
    await h.fetched(log_end=27)
    await h.stop()

    assert h.offsets(2) == list(range(2, 27)), "from the committed offset, each once, in order"


async def test_a_partition_never_committed_restarts_at_its_first_offset(tmp_path: Path) -> None:
    """aiokafka's seek_to_committed leaves a never-committed partition where it was (aiokafka#1003): past what an
    earlier generation fetched. The seek is explicit, and the continuity guard gets the offset, not None."""
    h = await harness(tmp_path)
    await h.rebalance(1)
    h.start()
    await h.fetched()
    assert h.offsets(1) == list(range(20))

    await h.consumer.on_partitions_revoked({P0, P1})
    h.kafka.position[P0] = 20  # aiokafka kept it where generation 1's fetches left it
    await h.rebalance(2)
    await h.fetched(log_end=23)
    await h.stop()

    assert h.offsets(2) == list(range(23)), "nothing was committed: all of it again (the ledger absorbs repeats)"
    assert h.consumer.restart_offsets[(TOPIC, 0)] == 0


async def test_records_dropped_after_the_position_passed_them_are_read_again_before_the_next(tmp_path: Path) -> None:
    """F-3: Faust's getmany drops fetched records (a partition paused, a batch cut short) after aiokafka moved past
    them. The next record of the partition is not handed over; the partition is sought back and read again."""
    h = await harness(tmp_path)
    rewinds: list[tuple[str, int]] = []
    h.consumer.on_rewind = lambda topic, records: rewinds.append((topic, records))
    h.kafka.dropped = {(P0, 3), (P0, 4)}
    await h.rebalance(1)
    h.start()
    await h.fetched()
    await h.fetched(log_end=22)
    await h.stop()

    assert h.offsets(1) == list(range(22)), "each once, in order, 3 and 4 included"
    assert (P0, 3) in h.kafka.seeks
    assert rewinds == [(TOPIC, 2)]


async def test_a_fetch_is_given_a_copy_of_the_active_partitions_and_none_when_no_partition_is_active(
    tmp_path: Path,
) -> None:
    """F-2: Faust passed its live set of active partitions to the fetch, and emptied it while pausing for a
    rebalance; aiokafka re-reads the set during a fetch and takes an empty one for every partition."""
    h = await harness(tmp_path)
    given: list[set[TP] | None] = []

    async def fetch(active: set[TP] | None, timeout: float) -> dict[TP, list[Any]]:
        given.append(active)
        return {}

    h.consumer._thread = SimpleNamespace(getmany=fetch)  # type: ignore[assignment]
    live = {P0, P1}

    await h.consumer._getmany(live, 1.0)
    live.clear()  # Faust pausing everything for a rebalance
    assert await h.consumer._getmany(live, 1.0) == {}

    await h.stop()
    assert given == [{P0, P1}], "the fetch kept the partitions it was asked for; an empty set fetched nothing"
    assert given[0] is not live
