"""The worker: the Faust app with its agents (tenants, dispatcher, log sink), its timers (commits, ledger expiry,
status polling, webhook delivery), a watchdog on its table recoveries
(:mod:`smsdispatch.runtime.recovery_watchdog`) and web pages (:mod:`smsdispatch.runtime.pages`).

Each agent catches every error inside its loop: an exception escaping an agent restarts it past the record.
Faust's own acking is off for every topic the worker reads (:mod:`smsdispatch.runtime.commits` says why): the
dispatcher and the log sink hand each record to a :class:`~smsdispatch.core.pipeline.Pipeline`, which reports
it done once handled, in offset order per partition, to the worker's
:class:`~smsdispatch.runtime.commits.OffsetCommitter`. The app drains the pipelines and commits on every
rebalance and at shutdown (:class:`~smsdispatch.runtime.app.DrainingApp`), and commits every second between.
Every outcome also passes the :class:`~smsdispatch.core.tracking.Tracker` before it is acked: the status polls
and webhook deliveries it asks for are durable first.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from aiokafka.partitioner import murmur2
from faust.sensors.prometheus import FaustMetrics

from smsdispatch.adapters.crypto import Keyring
from smsdispatch.adapters.twilio import RetryPolicy, TwilioHttp
from smsdispatch.contract import topics
from smsdispatch.contract.settings import Settings
from smsdispatch.core.admission import Admission
from smsdispatch.core.continuity import Continuity
from smsdispatch.core.dispatch import Dispatcher
from smsdispatch.core.dispatch_model import DispatcherOptions, InboundRecord
from smsdispatch.core.ledger import Ledger
from smsdispatch.core.liveness import Liveness
from smsdispatch.core.logsink import Batcher, Loggable, LogSink, parse_outcome
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.optouts import SuppressionList
from smsdispatch.core.pipeline import Pipeline, Work
from smsdispatch.core.rates import SendingRates
from smsdispatch.core.senders import SenderPool
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.core.tenants import TenantDirectory
from smsdispatch.core.tracking import Tracker
from smsdispatch.core.webhook_delivery import (
    new_webhook_client,
)
from smsdispatch.runtime.app import StreamsApp, create_app, ledger_store
from smsdispatch.runtime.broker_health import BrokerHealth
from smsdispatch.runtime.followers import SuppressionFollower, TenantFollower
from smsdispatch.runtime.pages import add_pages
from smsdispatch.runtime.range_reader import RangeReader
from smsdispatch.runtime.recovery_watchdog import RecoveryWatchdog
from smsdispatch.runtime.rocks import flush_to_files
from smsdispatch.runtime.sensors import LeanPrometheusMonitor
from smsdispatch.runtime.tenant_progress import TenantStreamProgress
from smsdispatch.runtime.tracker_setup import build_tracker
from smsdispatch.runtime.write_watch import WriteWatch

log = logging.getLogger("smsdispatch.worker")


@functools.lru_cache(maxsize=100_000)
def home_partition(tenant_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives a tenant_id key: Java's, aiokafka's, ours.
    Cached: murmur2 is pure Python here and every request and outcome asks, for the same few tenants."""
    hashed: int = murmur2(tenant_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def record_time(timestamp_s: float) -> datetime:
    """A record's timestamp; one no datetime can hold (a producer's mistake) reads as now, not as a crash."""
    try:
        return datetime.fromtimestamp(timestamp_s, UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def build_worker(
    settings: Settings, keyring: Keyring, metrics: DispatchMetrics | None = None, tenant_view: TenantView | None = None
) -> StreamsApp:
    """Create the app and register every agent and page on it. Nothing runs until the app starts. The status
    receiver checks callbacks against ``tenant_view``, by default one following all of ``sms.tenants``."""
    streams = create_app(settings)
    app = streams.app
    metrics = metrics or DispatchMetrics()
    # Faust's own sensors (messages in, commit latency, rebalances, consumer lag...) on the same /metrics.
    app.monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(metrics.registry, "faust"))
    tenants = TenantDirectory(streams.tenants_table.data, keyring.unseal)
    if tenant_view is None:
        follower = TenantFollower(settings.broker, keyring.unseal, partitions=settings.partitions)
        # A child of the app, so started and stopped with it: it loads while the tables recover, before the web
        # server (a child added later) answers callbacks, and stops after that server.
        app.add_dependency(follower)
        tenant_view = follower.view
    # Every tenant, not only those of this worker's partitions: a callback may reach any worker.
    every_tenant: TenantView = tenant_view
    # Every tenant's suppression list, for the same reason (an inbound STOP reaches any worker), and loaded before
    # the dispatcher's first check: a restart never sends to a number that opted out.
    suppressions = SuppressionFollower(settings.broker, partitions=settings.partitions)
    app.add_dependency(suppressions)
    opt_outs = SuppressionList(suppressions.view, streams.publish, metrics)
    ledger = Ledger(ledger_store(streams), streams.write_ledger)
    sink = LogSink(settings.database_url, metrics)
    broker = BrokerHealth(lambda: app.producer.probe())
    # Faust's table recovery waits for its changelog records without a bound: one that stalls gets a new generation.
    app.add_dependency(
        RecoveryWatchdog(
            lambda: app.tables.recovery,
            rejoin=lambda: app.consumer.request_rejoin(),
            reachable=lambda: broker.reachable,
            describe=lambda tp: app.consumer.describe_partition(tp),
        )
    )
    progress = TenantStreamProgress(
        settings.broker, app.conf.id, lambda tenant_id: home_partition(tenant_id, settings.partitions)
    )
    dispatcher_slot: list[Dispatcher] = []
    http_slot: list[TwilioHttp] = []
    tracker_slot: list[Tracker] = []
    webhook_clients: list[httpx.AsyncClient] = []

    def twilio_http() -> TwilioHttp:
        # Built on first use, inside the running loop: the HTTP client's connector binds to it.
        if not http_slot:
            http_slot.append(
                TwilioHttp(settings.twilio_base_url, max_connections=max(settings.tenant_concurrency, 100) * 4)
            )
        return http_slot[0]

    def tracker() -> Tracker:
        if not tracker_slot:
            webhook_clients.append(new_webhook_client())
            partition_for = partial(home_partition, partitions=settings.partitions)
            tracker_slot.append(
                build_tracker(streams, settings, tenants, twilio_http(), webhook_clients[0], metrics, partition_for)
            )
        return tracker_slot[0]

    def dispatcher() -> Dispatcher:
        if not dispatcher_slot:
            http = twilio_http()
            dispatcher_slot.append(
                Dispatcher(
                    tenants=tenants,
                    ledger=ledger,
                    publish=streams.publish,
                    senders=SenderPool(
                        http, retry=_retry_within(settings.send_deadline_seconds), public_url=settings.public_url
                    ),
                    options=DispatcherOptions(
                        tenant_concurrency=settings.tenant_concurrency,
                        ledger_retention=timedelta(days=settings.ledger_retention_days),
                        partition_for=lambda tenant_id: home_partition(tenant_id, settings.partitions),
                        tenants_caught_up=progress.caught_up,
                        send_deadline=settings.send_deadline_seconds,
                    ),
                    metrics=metrics,
                    admission=Admission(opt_outs=opt_outs, rates=SendingRates(), metrics=metrics),
                )
            )
        return dispatcher_slot[0]

    @app.agent(streams.tenants_source, name="smsdispatch.tenants")
    async def keep_tenants(stream: Any) -> None:
        async for event in stream.events():
            try:
                if event.key is None:
                    log.warning("ignoring an sms.tenants record without a key")
                elif event.value is None:
                    streams.tenants_table.pop(event.key, None)
                    log.info("tenant %s removed", event.key.decode(errors="replace"))
                else:
                    streams.tenants_table[event.key] = event.value
                    log.info("tenant %s updated", event.key.decode(errors="replace"))
            except Exception:
                log.exception("could not apply an sms.tenants record")
            progress.applied(event.message.partition, event.message.offset)
            streams.commits.done(event.message.topic, event.message.partition, event.message.offset)

    # Not isolated_partitions (it kills the worker on a rebalance) and not take_events (it acks a batch that was
    # cancelled or raised): each record goes into a pipeline that starts it at once and acks in offset order.
    # Nothing reaches a pipeline past a record the stream did not deliver (core/continuity.py says why).
    holes = RangeReader(settings.broker)
    continuity = Continuity(lambda: getattr(app.consumer, "restart_offsets", {}), holes.read)
    dispatching: Pipeline[Any] = _pipeline(streams, metrics, "dispatcher", settings.max_in_flight)
    logging_outcomes: Pipeline[Any] = _pipeline(streams, metrics, "logsink", settings.max_in_flight)
    batcher = Batcher(sink.write, settings.batch_size, settings.batch_within_seconds)
    writes = WriteWatch(
        lambda: app.producer.kafka_producer(), lambda topic, n: metrics.kafka_writes_stuck.labels(topic).inc(n)
    )
    liveness = Liveness(
        stall_seconds=settings.stall_after,
        pipelines={"dispatcher": dispatching, "logsink": logging_outcomes},
        oldest_write_age=writes.oldest_age,
        kafka_reachable=lambda: broker.reachable,
    )
    metrics.kafka_write_wait.set_function(writes.oldest_age)
    metrics.degraded.set_function(lambda: float(bool(liveness.verdict().reasons)))

    async def drain() -> None:
        # Deliveries of partitions about to move are cut short: their entries stay pending for the next owner.
        for running in tracker_slot:
            await running.stop_deliveries()
        for name, pipeline in (("dispatcher", dispatching), ("logsink", logging_outcomes)):
            acked, released = await pipeline.drain(settings.drain_seconds)
            metrics.drained.labels(name, "acked").inc(acked)
            metrics.drained.labels(name, "released").inc(released)
            if acked or released:
                log.info("%s drained: %d records finished and acked, %d given back unacked", name, acked, released)
        # While the partitions are still this worker's: their next owner starts after what was finished here.
        await streams.commits.flush()

    app.drain_hooks.append(drain)

    @app.timer(interval=1.0)
    async def commit_offsets() -> None:
        if app.rebalancing:
            return  # the drain commits at the revocation; a commit now would be refused
        try:
            await streams.commits.flush()
            ledger.checkpoint()
            for running in tracker_slot:
                running.checkpoint()
        except Exception:
            log.exception("committing offsets failed; the next pass retries")

    @app.agent(streams.requested, name="smsdispatch.dispatcher")
    async def dispatch(stream: Any) -> None:
        async def submit(record: Any, timestamp_s: float) -> None:
            inbound = InboundRecord(record.key, record.value, record.partition, record.offset, record_time(timestamp_s))
            core = dispatcher()
            routed = core.route(inbound)
            await dispatching.submit(record.partition, record.offset, record, partial(core.handle, routed), routed.key)

        async for event in stream.events():
            message = event.message
            missed, take = await continuity.admit(
                message.topic, message.partition, message.offset, message.generation_id
            )
            for record in missed:
                await submit(record, record.timestamp / 1000)
            if take:
                await submit(message, message.timestamp)

    @app.agent(streams.outcomes, name="smsdispatch.logsink")
    async def record_outcomes(stream: Any) -> None:
        async def submit(record: Any) -> None:
            handler = partial(_log_one, batcher, tracker(), parse_outcome(record.topic, record.value))
            # The sink reads three topics: each topic-partition has its own ack order.
            await logging_outcomes.submit((record.topic, record.partition), record.offset, record, handler)

        async for event in stream.events():
            message = event.message
            missed, take = await continuity.admit(
                message.topic, message.partition, message.offset, message.generation_id
            )
            for record in missed:
                await submit(record)
            if take:
                await submit(message)

    @app.timer(interval=60.0)
    async def expire_ledger() -> None:
        try:
            await dispatcher().expire(owned_partitions().__contains__)
        except Exception:
            log.exception("a ledger expiry pass failed; the next one retries")

    def owned_partitions() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.REQUESTED}

    def settled() -> bool:
        """No rebalance or table recovery under way: the pending-work tables hold what this worker owns."""
        return not app.rebalancing and app.tables.recovery.completed.is_set() and not app.in_recovery

    @app.timer(interval=1.0)
    async def poll_statuses() -> None:
        if settled():
            try:
                await tracker().poll_due(owned_partitions().__contains__)
            except Exception:
                log.exception("a status-polling pass failed; the next one retries")

    @app.timer(interval=1.0)
    async def deliver_webhooks() -> None:
        if settled():
            try:
                tracker().deliver_due(owned_partitions().__contains__)
            except Exception:
                log.exception("a webhook pass failed; the next one retries")

    @app.timer(interval=5.0)
    async def probe_broker() -> None:
        await broker.check()

    @app.timer(interval=5.0)
    async def watch_kafka_writes() -> None:
        try:
            writes.check()
        except Exception:
            log.exception("checking the Kafka writes failed; the next pass retries")

    add_pages(
        streams,
        public_url=settings.public_url,
        broker=broker,
        ledger=ledger,
        metrics=metrics,
        liveness=liveness,
        every_tenant=every_tenant,
        opt_out_changed=opt_outs.inbound,
        pending=lambda: dict(zip(("polls", "webhooks"), tracker().pending(), strict=True)),
    )

    @app.on_before_shutdown.connect
    async def _close(app_: Any, **_: Any) -> None:
        # After the consumer has stopped, so no batch is using them any more.
        await sink.close()
        await progress.close()
        await holes.close()
        ledger.checkpoint()
        for running in tracker_slot:
            await running.stop_deliveries()
            running.checkpoint()
        for table in streams.written_through_changelog:
            flush_to_files(table)
        for http in http_slot:
            await http.aclose()
        for client in webhook_clients:
            await client.aclose()

    # Registered on the app by their decorators; named here so that nothing reads as unused.
    _ = (keep_tenants, dispatch, record_outcomes, commit_offsets, expire_ledger, probe_broker, _close)
    _ = (poll_statuses, deliver_webhooks, watch_kafka_writes)
    return streams


def _retry_within(send_deadline: float) -> RetryPolicy:
    """429 retries get half the send deadline; the rest is for the last attempt and any reconciliation."""
    return RetryPolicy(max_elapsed=send_deadline / 2)


def _pipeline(streams: StreamsApp, metrics: DispatchMetrics, name: str, max_pending: int) -> Pipeline[Any]:
    """A pipeline whose tokens are Faust messages; a record done is reported to the worker's committer. A record
    given back needs nothing: its offset is never reported, and Faust re-reads from the committed offset."""

    async def ack(message: Any) -> None:
        streams.commits.done(message.topic, message.partition, message.offset)

    pipeline: Pipeline[Any] = Pipeline(ack=ack, max_pending=max_pending)
    metrics.held.labels(name).set_function(lambda: len(pipeline))
    metrics.pipeline_stalled.labels(name).set_function(pipeline.stalled_for)
    return pipeline


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
