"""The worker: the Faust app with its two agents (dispatcher, log sink), its timers (commits, ledger expiry,
status polling, webhook delivery, Kafka checks), its own state (:mod:`smsdispatch.runtime.state`), and web pages
(:mod:`smsdispatch.runtime.pages`).

Each agent catches every error inside its loop: an exception escaping an agent restarts it past the record.
Faust's own acking is off for every topic the worker reads (:mod:`smsdispatch.runtime.commits` says why): the
dispatcher and the log sink hand each record to a :class:`~smsdispatch.core.pipeline.Pipeline`, which reports
it done once handled, in offset order per partition, to the worker's
:class:`~smsdispatch.runtime.commits.OffsetCommitter`. A record's handler first waits, when it must, until its
partition's state is restored (:meth:`~smsdispatch.runtime.assembly.WorkerParts.gate`). The app drains the
pipelines and commits on every rebalance and at shutdown (:class:`~smsdispatch.runtime.app.DrainingApp`), and
commits every second between. Every outcome also passes the :class:`~smsdispatch.core.tracking.Tracker` before
it is acked: the status polls and webhook deliveries it asks for are durable first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from faust.sensors.prometheus import FaustMetrics

from smsdispatch.adapters.crypto import Keyring
from smsdispatch.contract.settings import Settings
from smsdispatch.core.continuity import Continuity
from smsdispatch.core.dispatch_model import InboundRecord
from smsdispatch.core.logsink import Batcher, Loggable, parse_outcome
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.pipeline import Work
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.core.tracking import Tracker
from smsdispatch.runtime.app import STATE_TOPICS, StreamsApp, create_app
from smsdispatch.runtime.assembly import WorkerParts, home_partition
from smsdispatch.runtime.pages import add_pages
from smsdispatch.runtime.range_reader import RangeReader
from smsdispatch.runtime.sensors import LeanPrometheusMonitor

__all__ = ["build_worker", "home_partition", "record_time"]

log = logging.getLogger("smsdispatch.worker")


def record_time(timestamp_s: float) -> datetime:
    """A record's timestamp; one no datetime can hold (a producer's mistake) reads as now, not as a crash."""
    try:
        return datetime.fromtimestamp(timestamp_s, UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def build_worker(
    settings: Settings, keyring: Keyring, metrics: DispatchMetrics | None = None, tenant_view: TenantView | None = None
) -> StreamsApp:
    """Create the app and register every agent, timer and page on it. Nothing runs until the app starts. The
    status receiver checks callbacks against ``tenant_view``, by default one following all of ``sms.tenants``."""
    streams = create_app(settings)
    parts = WorkerParts(streams, settings, keyring, metrics, tenant_view)
    # Faust's own sensors (messages in, commit latency, rebalances, consumer lag...) on the same /metrics.
    streams.app.monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(parts.metrics.registry, "faust"))
    streams.app.consumer.on_rewind = lambda topic, records: parts.metrics.consumer_rewinds.labels(topic).inc(records)
    holes = RangeReader(settings.broker)
    continuity = Continuity(
        lambda: getattr(streams.app.consumer, "restart_offsets", {}),
        holes.read,
        on_gap=lambda topic, records: parts.metrics.offset_gaps.labels(topic).inc(records),
    )
    _add_agents(streams, parts, continuity)
    _add_rebalance_hooks(streams, parts)
    _add_timers(streams, parts)
    add_pages(
        streams,
        public_url=settings.public_url,
        broker=parts.broker,
        ledger=parts.ledger,
        metrics=parts.metrics,
        liveness=parts.liveness,
        every_tenant=parts.tenant_view,
        opt_out_changed=parts.opt_outs.inbound,
        pending=lambda: dict(zip(("polls", "webhooks"), parts.tracker().pending(), strict=True)),
        ready=lambda: _ready(streams, parts),
        msg91_report_token=settings.msg91_report_token,
        tenant_of_message=parts.sink.tenant_of,
    )

    @streams.app.on_before_shutdown.connect
    async def _close(app_: Any, **_: Any) -> None:
        # After the consumer has stopped, so no batch is using them any more.
        await parts.aclose()
        await holes.close()
        await streams.state.close()

    _ = _close  # registered by its decorator
    return streams


def _add_agents(streams: StreamsApp, parts: WorkerParts, continuity: Continuity) -> None:
    """The dispatcher on ``sms.requested`` and the log sink on the outcome topics. Not ``isolated_partitions``
    (it kills the worker on a rebalance) and not ``take_events`` (it acks a batch that was cancelled or raised):
    each record goes into a pipeline that starts it at once and acks in offset order. Nothing reaches a pipeline
    past a record the stream did not deliver (core/continuity.py says why)."""
    app = streams.app

    async def dispatch_one(record: Any, timestamp_s: float) -> None:
        inbound = InboundRecord(record.key, record.value, record.partition, record.offset, record_time(timestamp_s))
        core = parts.dispatcher()
        routed = core.route(inbound)
        handler = parts.gate(record.partition, partial(core.handle, routed))
        await parts.dispatching.submit(record.partition, record.offset, record, handler, routed.key)

    async def log_one(record: Any, timestamp_s: float) -> None:
        outcome = parse_outcome(record.topic, record.value)
        handler = parts.gate(record.partition, partial(_log_one, parts.batcher, parts.tracker(), outcome))
        # The sink reads three topics: each topic-partition has its own ack order.
        await parts.logging_outcomes.submit((record.topic, record.partition), record.offset, record, handler)

    @app.agent(streams.requested, name="smsdispatch.dispatcher")
    async def dispatch(stream: Any) -> None:
        await _continuous(stream, continuity, dispatch_one)

    @app.agent(streams.outcomes, name="smsdispatch.logsink")
    async def record_outcomes(stream: Any) -> None:
        await _continuous(stream, continuity, log_one)

    _ = (dispatch, record_outcomes)  # registered by their decorators


async def _continuous(stream: Any, continuity: Continuity, submit: Callable[[Any, float], Awaitable[None]]) -> None:
    """Hand every record of ``stream`` to ``submit``, after the records missing before it (a hole, read directly)."""
    async for event in stream.events():
        message = event.message
        missed, take = await continuity.admit(message.topic, message.partition, message.offset, message.generation_id)
        for record in missed:
            await submit(record, record.timestamp / 1000)
        if take:
            await submit(message, message.timestamp)


def _add_rebalance_hooks(streams: StreamsApp, parts: WorkerParts) -> None:
    app, settings, metrics = streams.app, parts.settings, parts.metrics

    async def drain() -> None:
        # Deliveries of partitions about to move are cut short: their entries stay pending for the next owner.
        await parts.tracker().stop_deliveries()
        for name, pipeline in (("dispatcher", parts.dispatching), ("logsink", parts.logging_outcomes)):
            acked, released = await pipeline.drain(settings.drain_seconds)
            metrics.drained.labels(name, "acked").inc(acked)
            metrics.drained.labels(name, "released").inc(released)
            if acked or released:
                log.info("%s drained: %d records finished and acked, %d given back unacked", name, acked, released)
        # While the partitions are still this worker's: their next owner starts after what was finished here.
        await streams.commits.flush()
        streams.state.checkpoint()

    app.drain_hooks.append(drain)

    @app.on_partitions_assigned.connect
    async def restore_gained(app_: Any, assigned: Any, **_: Any) -> None:
        # At the end of Faust's assignment callback: restores start in tasks of their own, records wait for them.
        by_topic = {topic: sorted(tp.partition for tp in assigned if tp.topic == topic) for topic in STATE_TOPICS}
        log.info(
            "partitions assigned: %s", " ".join(f"{t}={','.join(map(str, p))}" for t, p in sorted(by_topic.items()))
        )
        if len({tuple(partitions) for partitions in by_topic.values()}) > 1:
            log.error("the assignment is not co-partitioned: each partition's state is kept for all of its topics")
        streams.state.assigned({partition for partitions in by_topic.values() for partition in partitions})

    _ = restore_gained  # registered by its decorator


def _add_timers(streams: StreamsApp, parts: WorkerParts) -> None:
    app = streams.app

    def restored() -> Callable[[int], bool]:
        """The partitions whose state is here and current (none during a rebalance)."""
        return set().__contains__ if app.rebalancing else streams.state.restored().__contains__

    async def every_second_commit() -> None:
        if not app.rebalancing:  # the drain commits at the revocation; a commit now would be refused
            await streams.commits.flush()
            streams.state.checkpoint()

    async def expire_ledger() -> None:
        await parts.dispatcher().expire(restored())

    async def poll_statuses() -> None:
        await parts.tracker().poll_due(restored())

    async def deliver_webhooks() -> None:
        parts.tracker().deliver_due(restored())

    async def check_kafka_writes() -> None:
        parts.writes.check()

    async def probe_broker() -> None:
        await parts.broker.check()

    timers: list[tuple[float, Callable[[], Awaitable[None]], str]] = [
        (1.0, every_second_commit, "committing offsets"),
        (60.0, expire_ledger, "a ledger expiry pass"),
        (1.0, poll_statuses, "a status-polling pass"),
        (1.0, deliver_webhooks, "a webhook pass"),
        (5.0, probe_broker, "the broker probe"),
        (5.0, check_kafka_writes, "checking the Kafka writes"),
    ]
    for interval, work, what in timers:
        app.timer(interval=interval, name=work.__name__)(_logged(work, what))


def _logged(work: Callable[[], Awaitable[Any]], what: str) -> Callable[[], Awaitable[None]]:
    """``work``, with its failure logged (the next pass retries) instead of ending the timer."""

    async def run() -> None:
        try:
            await work()
        except Exception:
            log.exception("%s failed; the next pass retries", what)

    run.__name__ = run.__qualname__ = work.__name__
    return run


def _ready(streams: StreamsApp, parts: WorkerParts) -> bool:
    """Every assigned partition restored, the tenant view loaded, no rebalance under way, Kafka answering."""
    follower = parts.follower
    loaded = follower is None or follower.is_loaded
    return streams.state.all_restored and loaded and not streams.app.rebalancing and parts.broker.reachable


async def _log_one(batcher: Batcher, tracker: Tracker, outcome: Loggable | None, work: Work[Any]) -> None:
    if outcome is not None:
        # Side by side: a webhook or a poll never waits for the database, and the record is acked after both. The
        # row joins its batch first; no tasks of their own (a gather made two per outcome).
        written = batcher.enqueue(outcome)
        try:
            await tracker.observe(outcome)
        except BaseException:  # a drain cancelled it: the batch goes on for the others, nobody waits for it here
            written.cancel()
            raise
        await written
