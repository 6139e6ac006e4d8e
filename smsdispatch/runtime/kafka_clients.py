"""The worker's Kafka clients: Faust's aiokafka producer and consumer, each with what the worker needs changed.

* :class:`IdempotentProducer`: idempotence on, a send without Faust's per-record wrapper work, and aiokafka's
  producer replaced by :class:`~smsdispatch.adapters.kafka.TopicTrackingProducer` (a topic it writes never falls
  out of its metadata; metadata refreshes at most one per retry backoff; its unacknowledged writes are watched);
* :class:`WorkerConsumerThread`: the aiokafka consumer co-partitions (range assignor), and the broker holds an
  empty fetch :data:`FETCH_MAX_WAIT_MS` at most and answers at :data:`FETCH_MIN_BYTES`;
* :class:`RewindingConsumer`: a never-committed partition is read again from its beginning after a rebalance,
  and fetched records reach the streams without four tasks each (:meth:`RewindingConsumer._drain_messages`).

Each override names the faust-streaming (0.15.3) code it replaces. ``tests/runtime/test_kafka_clients.py`` checks
the producer on a real broker and the fetch loop's delivery race on its own; every Kafka test, the rebalance and
crash tests among them, runs its records through the fetch loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import aiokafka
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from faust.exceptions import ImproperlyConfigured, NotReady, ProducerSendError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, credentials_to_aiokafka_auth, server_list
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from faust.transport.drivers.aiokafka import Producer as AiokafkaProducer
from faust.types import TP

from smsdispatch.adapters.kafka import TopicTrackingProducer

log = logging.getLogger("smsdispatch.consumer")


class IdempotentProducer(AiokafkaProducer):
    """Faust's aiokafka producer with idempotence on, as Kafka's Java clients default to (Faust turns it on only
    for transactions): a write retried after a lost acknowledgement, e.g. across a broker restart, lands once
    instead of as a second, duplicate outcome record."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    @property
    def _producer_type(self) -> type[TopicTrackingProducer]:
        """The aiokafka producer class Faust instantiates (``Producer._new_producer``)."""
        return TopicTrackingProducer

    def kafka_producer(self) -> TopicTrackingProducer | None:
        """The running aiokafka producer; None before the app started it, or after it stopped."""
        try:
            producer: TopicTrackingProducer = self._ensure_producer()
        except NotReady:
            return None
        return producer

    async def probe(self) -> None:
        """One metadata request over the producer's connections; raises when no broker answers."""
        await self._ensure_producer().client.fetch_all_metadata()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[Any]:
        """Faust's ``Producer.send`` for the worker's own writes (no timestamp, headers or transaction), without
        its per-record work: the ``on_produce_message`` signal, which nothing here listens to, and the headers
        and timestamp conversions. Every request makes four writes; that wrapper was 2.6% of the worker's
        CPU under load (py-spy). Anything else, or a listener on the signal, takes Faust's own path."""
        if timestamp or headers is not None or transactional_id or _has_receivers(self.app.on_produce_message):
            return await super().send(
                topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
            )
        try:
            delivery: Awaitable[Any] = await self._ensure_producer().send(topic, value, key=key, partition=partition)
        except KafkaError as exc:  # as Faust's own send reports it
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        return delivery


def _has_receivers(signal: Any) -> bool:
    """Whether anyone listens to a mode signal; an unknown signal shape counts as listened to."""
    receivers, by_sender = getattr(signal, "_receivers", None), getattr(signal, "_filter_receivers", None)
    return receivers is None or by_sender is None or bool(receivers) or any(by_sender.values())


#: How long the broker may hold a fetch that found no new records. aiokafka keeps one fetch in flight per broker,
#: and leaves out of it the partitions whose last records are still being handed to the streams; when only idle
#: partitions are in it, records arriving meanwhile on the busy ones wait until it returns. At Faust's fixed
#: 1,500 ms that wait repeated itself under steady load: p50 1.3 to 1.6 s from request to outcome at half the
#: burst rate (benchmarks/dispatch_throughput.py (f)), against about 0.15 s in runs that escaped it. The price is
#: empty fetches while idle: an idle worker used 2.7% of a core at 100 ms, 4.0% at 50 ms, 1.4% at 1,500 ms.
FETCH_MAX_WAIT_MS = 100

#: The broker answers a fetch once it holds this much for it (or after :data:`FETCH_MAX_WAIT_MS`), not at the
#: first byte. With aiokafka's default of 1 byte, a worker at a steady 300 requests/s fetched a few records at a
#: time, and the fetching alone cost a large part of its CPU. Measured with ``--half-load-rate 300`` (with
#: :data:`PRODUCER_LINGER_S`): 3,150-3,200 µs per request before, about 1,900 after, p50 from request to outcome
#: 115-122 ms before and about 128 ms after. 64 KB slowed bursts (fetches of idle partitions waited the full
#: 100 ms). The price: a request arriving alone at an idle worker waits up to 100 ms more.
FETCH_MIN_BYTES = 16 * 1024

#: How long the producer holds a write for others to join its request (aiokafka's ``linger_ms``; Faust's default
#: is 0). Every request makes four writes one after the other, and at moderate load each went out in a produce
#: request of its own. 10 ms batches the writes of concurrent requests into far fewer requests, and adds at most
#: 40 ms to a request. Measured with the minimum above; a 5 ms linger alone gave 2,880-3,000 µs per request at
#: 300/s against 3,150-3,200.
PRODUCER_LINGER_S = 0.010


class WorkerConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, building the worker's aiokafka consumer itself (``_create_worker_consumer``, the
    one place Faust builds it), with what Faust offers no setting for, as public constructor arguments:

    * the fetch wait :data:`FETCH_MAX_WAIT_MS` and minimum :data:`FETCH_MIN_BYTES`;
    * **co-partitioning**: aiokafka's ``RangePartitionAssignor``, which gives each member the same range of
      partitions of every topic of equal partition count it subscribes to. Faust picks co-partitioning only for
      apps with changelog tables (drivers/aiokafka.py 575-583) and round robin otherwise; the worker keeps its
      own state by partition (the ledger of ``sms.requested`` partition p is written while handling that
      partition, the pending polls of p while logging outcomes of ``sms.dispatched`` partition p), so the owner
      of partition p of one topic must own partition p of all of them.

    The rest is Faust's own construction (faust-streaming 0.15.3, drivers/aiokafka.py 568-628).
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        conf = self.app.conf
        if conf.broker_session_timeout > conf.broker_request_timeout:
            raise ImproperlyConfigured("broker_session_timeout cannot be greater than broker_request_timeout")
        return aiokafka.AIOKafkaConsumer(
            client_id=conf.broker_client_id,
            group_id=conf.id,
            group_instance_id=conf.consumer_group_instance_id,
            bootstrap_servers=server_list(transport.url, transport.default_port),
            partition_assignment_strategy=[RangePartitionAssignor],
            enable_auto_commit=False,
            auto_offset_reset=conf.consumer_auto_offset_reset,
            max_poll_records=conf.broker_max_poll_records,
            max_poll_interval_ms=int((conf.broker_max_poll_interval or 0) * 1000.0),
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            fetch_min_bytes=FETCH_MIN_BYTES,
            request_timeout_ms=int(conf.broker_request_timeout * 1000.0),
            check_crcs=conf.broker_check_crcs,
            session_timeout_ms=int(conf.broker_session_timeout * 1000.0),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000.0),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000.0),
            isolation_level="read_uncommitted",  # at least once: no transactions
            metadata_max_age_ms=conf.consumer_metadata_max_age_ms,
            connections_max_idle_ms=conf.consumer_connections_max_idle_ms,
            **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )


class RewindingConsumer(AiokafkaConsumer):
    """Faust's aiokafka consumer, handing each partition's records to the streams in offset order, each once per
    assignment, from where the group committed, however the fetches and the rebalances interleave.

    * **Reading restarts at an explicit offset** after every rebalance (:meth:`perform_seek`): the committed one,
      or for a partition never committed (or committed at 0) its first offset, sought explicitly (aiokafka's
      ``seek_to_committed`` leaves those where they were, aiokafka#1003: measured on a fresh broker, 142 of
      10,000 requests at the start of partitions were never processed before this). From a revocation until that
      seek, nothing of the partition is handed over (a fetch begun before the rebalance outlives it: F-4).
    * **A record reaches the streams only if it is the next one expected of its partition.** An older one was
      handed over already in this assignment, or was fetched before the seek: skipped. A newer one means records
      before it were dropped after aiokafka had moved past them (Faust drops fetched records of partitions it
      paused, and batches cut short by a new generation: faust-races.md F-3): skipped, and the partition is
      sought back to the offset expected (logged, counted by ``on_rewind``). The expected offset moves on only
      when a delivery completed in the current generation, so a delivery cancelled by a rebalance writes nothing
      back into the next one (F-5: Faust's loop wrote the read offset of a record in flight after the revocation
      had removed it, and records below that stale offset were dropped in the next generation).
    * **A fetch is given a frozen copy of the active partitions** (:meth:`_getmany`): Faust passed its live set,
      which it empties while pausing for a rebalance, and aiokafka reads an empty set as "every partition"
      (F-2); with no active partition nothing is fetched.
    * Handing records over costs one task per record, not four (:meth:`_drain_messages`).

    Every topic this consumer reads has contiguous offsets (no compaction, no transactions): the worker reads
    ``sms.tenants`` and its changelogs with consumers of their own.
    """

    #: Where each partition's reading restarted at the last seek (explicit offsets); the continuity guard checks
    #: delivered offsets against it.
    restart_offsets: dict[tuple[str, int], int]
    #: Told of each rewind: (topic, records skipped).
    on_rewind: Callable[[str, int], None] = staticmethod(lambda _topic, _records: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restart_offsets = {}
        self._expected: dict[TP, int] = {}
        self._rewinding: set[TP] = set()
        self._seeks: set[asyncio.Future[None]] = set()
        self._warned_unsought: set[TP] = set()

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return WorkerConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Nothing of a revoked partition is handed over until a seek of a new assignment says where to restart."""
        for tp in revoked:
            self._expected.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        committed: dict[Any, int | None] = dict(await self.seek_to_committed())
        never = [tp for tp, offset in committed.items() if not offset]
        if never:
            earliest = await self.earliest_offsets(*never)
            starts = {tp: earliest.get(tp) or 0 for tp in never}
            await self.seek_wait(starts)
            committed.update(starts)
        offsets = {TP(tp.topic, tp.partition): offset or 0 for tp, offset in committed.items()}
        self.restart_offsets = {(tp.topic, tp.partition): offset for tp, offset in offsets.items()}
        self._expected.clear()
        self._expected.update(offsets)
        self._rewinding.clear()
        self._warned_unsought.clear()
        # Faust's own bookkeeping (Consumer.perform_seek): where reading resumes, what is committed.
        self._read_offset.update({tp: offset if offset > 0 else None for tp, offset in offsets.items()})
        self._committed_offset.update({tp: offset or None for tp, offset in offsets.items()})

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's
        """Faust's ``ThreadDelegateConsumer._getmany`` with a frozen copy of the active set (see the class)."""
        if active_partitions is None:
            return await self._thread.getmany(None, timeout)
        frozen = set(active_partitions)
        if not frozen:
            return {}
        return await self._thread.getmany(frozen, timeout)

    def _unsought(self, tp: TP, offset: int) -> None:
        """A record of a partition no seek has placed since its assignment: normal while a rebalance runs (the
        seek follows); outside one, Faust's seek failed, and the partition is stuck until the next rebalance."""
        if not self.app.rebalancing and tp not in self._warned_unsought:
            self._warned_unsought.add(tp)
            log.warning("%s[%d]: offset %d fetched, but the partition was not sought since its assignment: its "
                        "records wait for the next rebalance", tp.topic, tp.partition, offset)  # fmt: skip

    def _rewind(self, tp: TP, expected: int, offset: int) -> None:
        """Seek ``tp`` back to ``expected``: records up to ``offset`` were dropped after the position passed them."""
        if tp in self._rewinding:
            return  # a seek back is under way; what arrives before it lands is skipped
        self._rewinding.add(tp)
        self.on_rewind(tp.topic, offset - expected)
        log.info("%s[%d]: got offset %d, expected %d: reading again from %d", tp.topic, tp.partition, offset,
                 expected, expected)  # fmt: skip

        async def seek_back() -> None:
            try:
                await self.seek_wait({tp: expected})
            except Exception:  # the partition moved away meanwhile: its next assignment seeks anew
                log.info("seeking %s[%d] back to %d failed", tp.topic, tp.partition, expected, exc_info=True)
            finally:
                self._rewinding.discard(tp)

        seeking = asyncio.ensure_future(seek_back())
        self._seeks.add(seeking)  # held until done: the loop keeps only weak references to tasks
        seeking.add_done_callback(self._seeks.discard)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (``Consumer._drain_messages``), handing over only the record expected next of each
        partition (see the class), and waiting on each delivery with one task instead of Faust's four.

        Faust waits with ``wait_first(delivery, suspend_flow.wait())``: four tasks per record (the delivery, and
        a waiter on each of the flow, stop and crash events) and an ``asyncio.wait`` over them, 3.5% of the
        worker's CPU under load. Here the delivery is the only task per record; it races one waiter on those
        three events, made once and kept until one of them is set. A delivery that blocks (paused flow control, a
        full stream buffer) is cancelled once the flow is suspended for a rebalance, the consumer stops or
        crashes; an error it raises ends the loop as before. Faust's gap acking and commit-every-N are left out:
        the worker reads every topic with Faust's acking off.
        """
        callback, getmany, app = self.callback, self.getmany, self.app
        consumer_should_stop, fetcher_should_stop = self._stopped.is_set, fetcher._stopped.is_set
        expected_of, set_read_offset = self._expected.get, self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        interruption = _Interruption((self.suspend_flow, self._stopped, self._crashed))
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records = getmany(timeout=1.0)
                await self.sleep(0)  # getmany may be called in a loop that never yields (Faust's comment)
                if not self.should_stop:
                    async for tp, message in records:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset, expected = message.offset, expected_of(tp)
                        if offset != expected:
                            if expected is None:  # not sought in this assignment yet (fetched before the seek)
                                self._unsought(tp, offset)
                            elif offset > expected:
                                self._rewind(tp, expected, offset)
                            continue
                        generation = app.consumer_generation_id
                        if await interruption.race(callback(message)) and generation == app.consumer_generation_id:
                            self._expected[tp] = offset + 1
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
            interruption.close()


class _Settable(Protocol):
    """An asyncio or mode event: something set once that can be waited for."""

    async def wait(self) -> Any: ...


class _Interruption:
    """A delivery raced against a set of events: what ``wait_first(delivery, *events)`` does, with the waiter on
    the events made once and kept until one of them is set, instead of a waiter per event per delivery."""

    def __init__(self, events: tuple[_Settable, ...]) -> None:
        self._events = events
        self._waiter: asyncio.Future[None] | None = None

    async def race(self, delivery: Awaitable[Any]) -> bool:
        """Run ``delivery`` until it ends or one of the events is set (it is then cancelled); its error is raised.
        True when the delivery completed, False when it was cut short."""
        task = asyncio.ensure_future(delivery)
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.ensure_future(self._any_set())
        try:
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            task.result()  # raises the delivery's error
            return True
        return False

    async def _any_set(self) -> None:
        waits = [asyncio.ensure_future(event.wait()) for event in self._events]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
            self._waiter = None
