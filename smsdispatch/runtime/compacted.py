"""Following a whole compacted topic into memory, in every worker: the machinery the in-memory views share.

:class:`CompactedFollower` reads every partition of one topic from its beginning with a plain consumer in no
group (so it never takes part in, nor waits for, a rebalance, and commits nothing) and keeps following it for
as long as the service runs, handing each record to a :class:`CompactedSink`. The sink decides what a record
means; the follower only guarantees the order of a partition and reports how far each one has been read, past
offsets compaction removed too (which no record's offset shows).

A consumer that fails to open is replaced and retried with backoff, in the background, so the app's start
never waits for Kafka. Once open it is kept, whatever fails afterwards: reopening would replay the topic over
what the sink holds, and a key removed meanwhile (its tombstone compacted away) would stay.

:meth:`CompactedFollower.loaded` answers "has the sink seen everything that was on the topic when following
began?": the end offsets are read once, when the consumer opens, and loading is over when every partition's
position has reached them. Records published later are not waited for (following them is not loading).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiokafka import TopicPartition
from mode import Service

from smsdispatch.runtime.topics import groupless_consumer

log = logging.getLogger(__name__)


class CompactedSink(Protocol):
    """Where a :class:`CompactedFollower` puts what it reads. Called in the event loop, never concurrently."""

    def apply(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        """Apply the record at ``offset`` of ``partition`` (``value`` None: a tombstone)."""

    def reached(self, partition: int, position: int) -> None:
        """Everything below ``position`` on ``partition`` has been applied (or was compacted away)."""

    def __len__(self) -> int:
        """How many entries the sink holds (for the log line that says loading is over)."""


class CompactedFollower(Service):
    """Feeds ``sink`` from every partition of ``topic``, from the beginning, while the service runs; start and
    stop it with the app. ``label`` names the sink in log lines ("the tenant view"), ``unit`` its entries."""

    def __init__(
        self,
        broker_url: str,
        sink: CompactedSink,
        *,
        topic: str,
        partitions: int,
        label: str,
        unit: str = "entries",
        consumer_factory: Callable[[], Any] | None = None,
        retry_seconds: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._sink = sink
        self._topic = topic
        self._partition_count = partitions
        self._label = label
        self._unit = unit
        self._new_consumer = consumer_factory or (lambda: groupless_consumer(broker_url))
        self._retry_seconds = retry_seconds
        self._consumer: Any = None
        self._partitions: list[TopicPartition] = []
        self._opened = asyncio.Event()
        self._positions: dict[int, int] = {}
        #: Where the topic ended when reading began, until every partition has got there (then None).
        self._loading: dict[int, int] | None = None
        self._loaded = asyncio.Event()

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def is_loaded(self) -> bool:
        return self._loaded.is_set()

    async def loaded(self) -> None:
        """Return once the sink holds everything that was on the topic when the consumer opened.

        Waits as long as that takes, Kafka away included, and still waits after the service stopped without
        getting there: a caller that must not act on a partial view bounds the wait itself (or is cancelled).
        """
        await self._loaded.wait()

    async def on_start(self) -> None:
        # In the background: the app's start must not wait for Kafka (its own clients retry the same way).
        self.add_future(self._follow())

    async def end_offsets(self) -> Mapping[int, int]:
        """Where each partition ends now; waits until the consumer is assigned (callers bound that wait)."""
        await self._opened.wait()
        if self._consumer is None:  # stopped: asking the closed consumer would open a connection nobody closes
            raise RuntimeError(f"{self._label} no longer follows {self._topic}")
        ends = await self._consumer.end_offsets(self._partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _follow(self) -> None:
        delay = self._retry_seconds
        try:
            while not self.should_stop:
                try:
                    if self._consumer is None:
                        await self._open()
                    await self._read_batch()
                    delay = self._retry_seconds
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("following %s failed (%s); retrying in %.1fs", self._topic, type(exc).__name__, delay)
                    await self.sleep(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            consumer, self._consumer = self._consumer, None
            self._opened.set()  # callers of end_offsets still waiting are answered at once (with an error)
            if consumer is not None:
                await _stop(consumer)

    async def _open(self) -> None:
        consumer = self._new_consumer()
        # Every partition by number: the worker starts only when the topic has the partitions it is configured
        # with (cli/worker.py), and a consumer assigning by hand has no metadata to list them before it assigns.
        partitions = [TopicPartition(self._topic, partition) for partition in range(self._partition_count)]
        try:
            await consumer.start()  # inside: a failed start may leave connections that only stop() closes
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            # Bounded: aiokafka waits as long as it takes for a partition the broker does not know (yet).
            loading = await asyncio.wait_for(consumer.end_offsets(partitions), 30)
        except BaseException:
            await _stop(consumer)
            raise
        known = consumer.partitions_for_topic(self._topic)
        if known is not None and len(known) != len(partitions):
            log.warning("%s has %d partitions, %s reads %d", self._topic, len(known), self._label, len(partitions))
        self._consumer, self._partitions = consumer, partitions
        self._loading = {tp.partition: offset for tp, offset in loading.items()}
        self._opened.set()
        log.info("reading all %d partitions of %s into %s", len(partitions), self._topic, self._label)
        self._check_loaded()  # an empty topic is loaded at once, without waiting for a poll to time out

    async def _read_batch(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=1000)
        for tp, records in batches.items():
            for record in records:
                self._sink.apply(tp.partition, record.offset, record.key, record.value)
        # While loading, every partition's position is asked for, not only those that returned records: one
        # whose records all went (a log start past 0) returns none, yet is read to its end all the same.
        # The positions also step past what compaction removed at the end of a batch, which no offset shows.
        asked = self._partitions if self._loading is not None else list(batches)
        for tp in asked:
            self._advance(tp.partition, await self._consumer.position(tp))
        self._check_loaded()

    def _advance(self, partition: int, position: int) -> None:
        if position > self._positions.get(partition, 0):
            self._positions[partition] = position
        self._sink.reached(partition, position)

    def _check_loaded(self) -> None:
        loading = self._loading
        if loading is None or any(self._positions.get(p, 0) < end for p, end in loading.items()):
            return
        self._loading = None
        self._loaded.set()
        log.info("%s holds the %d %s on %s and follows it", self._label, len(self._sink), self._unit, self._topic)


async def _stop(consumer: Any) -> None:
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        # aiokafka stopping a consumer in no group right after its start re-raises the cancellation of a task of
        # its own (aio-libs/aiokafka#647): that one is swallowed, a cancellation of ours is not.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
