"""The worker's Kafka clients: Faust's aiokafka producer and consumer, each with what the worker needs changed.

* :class:`IdempotentProducer`: idempotence on, a send without Faust's per-record wrapper work, and aiokafka's
  producer replaced by :class:`~smsdispatch.adapters.kafka.TopicTrackingProducer` (a topic it writes never falls
  out of its metadata; metadata refreshes at most one per retry backoff; its unacknowledged writes are watched);
* :class:`PromptFetching`: the broker holds an empty fetch :data:`FETCH_MAX_WAIT_MS` at most and answers at
  :data:`FETCH_MIN_BYTES`;
* :class:`RewindingConsumer`: a never-committed partition is read again from its beginning after a rebalance,
  and fetched records reach the streams without four tasks each (:meth:`RewindingConsumer._drain_messages`);
  it can also ask the group for a new generation and describe a partition's fetch state (for the recovery
  watchdog).

Each override names the faust-streaming (0.15.3) code it replaces. ``tests/runtime/test_kafka_clients.py`` checks
the producer on a real broker and the fetch loop's delivery race on its own; every Kafka test, the rebalance and
crash tests among them, runs its records through the fetch loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady, ProducerSendError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from faust.transport.drivers.aiokafka import Producer as AiokafkaProducer
from faust.types import TP

from smsdispatch.adapters.kafka import TopicTrackingProducer


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


class PromptFetching(AIOKafkaConsumerThread):
    """Faust's consumer thread with the worker consumer's fetch wait at :data:`FETCH_MAX_WAIT_MS` and its minimum
    at :data:`FETCH_MIN_BYTES`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes fetch_max_wait_ms=1500 and offers no setting for either; aiokafka reads them at start.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        return consumer


class RewindingConsumer(AiokafkaConsumer):
    """Faust's aiokafka consumer, except that after a rebalance a partition the group never committed is read
    from its beginning, and that handing records to the streams costs one task per record, not four.

    Faust seeks every assigned partition to its committed offset after each rebalance, so that records it
    skipped as stale (fetched before the rebalance) are read again. But aiokafka's ``seek_to_committed`` does
    not seek a partition without a committed offset (or committed at 0): its position stays past the skipped
    records, and the first commit after them jumps over them. Measured on a fresh broker: 142 of 10,000
    requests, all at the start of partitions, never processed. The beginning is where ``auto_offset_reset``
    (earliest) would have started; what was finished but not yet committed is read again, and the ledger makes
    that harmless.
    """

    #: Where each stream partition's reading restarted at the last seek: its committed offset, or None for its
    #: beginning. The dispatcher's continuity guard checks delivered offsets against it.
    restart_offsets: dict[tuple[str, int], int | None]

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return PromptFetching(self, loop=self.loop, beacon=self.beacon)

    def request_rejoin(self) -> None:
        """Ask the group for a rebalance (:mod:`smsdispatch.runtime.recovery_watchdog` says when). Safe from the
        app's loop: the aiokafka consumer lives in the consumer thread's loop, and is asked there."""
        thread = self._thread
        request_rejoin(thread._ensure_consumer(), thread.thread_loop)

    def describe_partition(self, tp: Any) -> str:
        """How a partition looks to the fetch path, for a log line: position, paused, last fetched, last handed
        to the streams. Read from another thread without a lock: good enough for a diagnosis, nothing more."""
        read = self._read_offset.get(tp)
        try:
            fetcher = self._thread._ensure_consumer()._fetcher
            state = fetcher._subscriptions.subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
            position = state.position if state.has_valid_position else "none"
            fetched_ms_ago = int(time.time() * 1000 - state.timestamp) if state.timestamp else "never"
            where = f"position {position}, paused {state.paused}, fetched {fetched_ms_ago} ms ago"
            held = str(TopicPartition(tp.topic, tp.partition) in fetcher._records)
        except Exception as exc:  # private aiokafka state: a different version may lay it out otherwise
            where, held = f"fetch state unknown ({type(exc).__name__})", "?"
        return f"{tp.topic}[{tp.partition}]: {where}, records held {held}, last handed over {read}"

    async def perform_seek(self) -> None:
        committed = await self.seek_to_committed()
        self.restart_offsets = {
            (tp.topic, tp.partition): offset or None
            for tp, offset in committed.items()
            if not self._is_changelog_tp(tp)
        }
        never = [tp for tp, offset in committed.items() if not offset and not self._is_changelog_tp(tp)]
        if never:
            await self._thread.seek_to_beginning(*never)
        # Faust's own bookkeeping (Consumer.perform_seek): where reading resumes, what is committed.
        self._read_offset.update(
            {tp: offset if offset is not None and offset >= 0 else None for tp, offset in committed.items()}
        )
        self._committed_offset.update(
            {TP(tp.topic, tp.partition): offset or None for tp, offset in committed.items() if offset is not None}
        )

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (``Consumer._drain_messages``), the same step for step, but for how it waits on each
        record's delivery to the streams.

        Faust waits with ``wait_first(delivery, suspend_flow.wait())``: four tasks per record (the delivery, and
        a waiter on each of the flow, stop and crash events) and an ``asyncio.wait`` over them, 3.5% of the
        worker's CPU under load. Here the delivery is the only task per record; it races one waiter on those
        three events, made once and kept until one of them is set. What Faust does is unchanged: a delivery
        that blocks (paused flow control, a full stream buffer) is cancelled once the flow is suspended for a
        rebalance, the consumer stops or crashes; an error it raises ends the loop as before.
        """
        callback, getmany = self.callback, self.getmany
        consumer_should_stop, fetcher_should_stop = self._stopped.is_set, fetcher._stopped.is_set
        get_read_offset, set_read_offset = self._read_offset.__getitem__, self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
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
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is None or offset >= read:
                            if offset - (read or 0) > 1 and read and acks_enabled_for(message.topic):
                                await self._add_gap(tp, read + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await interruption.race(callback(message))
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


def request_rejoin(consumer: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Make an aiokafka consumer in a group rejoin it, which starts a new generation for every member. ``loop`` is
    the one the consumer runs in; the request is handed to it, so any thread may ask."""
    loop.call_soon_threadsafe(consumer._coordinator.request_rejoin)


class _Settable(Protocol):
    """An asyncio or mode event: something set once that can be waited for."""

    async def wait(self) -> Any: ...


class _Interruption:
    """A delivery raced against a set of events: what ``wait_first(delivery, *events)`` does, with the waiter on
    the events made once and kept until one of them is set, instead of a waiter per event per delivery."""

    def __init__(self, events: tuple[_Settable, ...]) -> None:
        self._events = events
        self._waiter: asyncio.Future[None] | None = None

    async def race(self, delivery: Awaitable[Any]) -> None:
        """Run ``delivery`` until it ends or one of the events is set (it is then cancelled); its error is raised."""
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
