"""The worker: the Faust app with its agents (tenants, dispatcher, log sink) and web pages.

Each agent catches every error inside its loop: Faust acks an event whose agent raised and never retries it
(shared/reference/faust-kafka.md), so an escaping exception would be a lost message. The dispatcher and the log
sink read with acks off (``stream.noack()``) and hand each record to a
:class:`~smsdispatch.agents.pipeline.Pipeline`, which acks it once handled, in offset order, and which the app
drains on every rebalance and at shutdown (:class:`~smsdispatch.streams.app.DrainingApp`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiokafka.partitioner import murmur2
from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smsdispatch.agents.dispatch import Dispatcher, DispatcherOptions, InboundRecord
from smsdispatch.agents.logsink import Batcher, Loggable, LogSink, parse_outcome
from smsdispatch.agents.metrics import DispatchMetrics
from smsdispatch.agents.pipeline import Pipeline, Work
from smsdispatch.agents.senders import SenderPool
from smsdispatch.agents.status import CallbackRejected, status_from_callback
from smsdispatch.crypto import Keyring
from smsdispatch.providers import RetryPolicy, TwilioHttp
from smsdispatch.settings import Settings
from smsdispatch.streams import topics
from smsdispatch.streams.app import StreamsApp, create_app
from smsdispatch.streams.ledger import Ledger
from smsdispatch.streams.tenant_progress import TenantStreamProgress
from smsdispatch.streams.tenants import TenantDirectory

log = logging.getLogger("smsdispatch.worker")


def home_partition(tenant_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives a tenant_id key: Java's, aiokafka's, ours."""
    hashed: int = murmur2(tenant_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def record_time(timestamp_s: float) -> datetime:
    """A record's timestamp; one no datetime can hold (a producer's mistake) reads as now, not as a crash."""
    try:
        return datetime.fromtimestamp(timestamp_s, UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def build_worker(settings: Settings, keyring: Keyring, metrics: DispatchMetrics | None = None) -> StreamsApp:
    """Create the app and register every agent and page on it. Nothing runs until the app starts."""
    streams = create_app(settings)
    app = streams.app
    metrics = metrics or DispatchMetrics()
    tenants = TenantDirectory(streams.tenants_table.data, keyring.unseal)
    ledger = Ledger(streams.ledger_table.data, streams.write_ledger)
    sink = LogSink(settings.database_url, metrics)
    progress = TenantStreamProgress(
        settings.broker, app.conf.id, lambda tenant_id: home_partition(tenant_id, settings.partitions)
    )
    dispatcher_slot: list[Dispatcher] = []
    http_slot: list[TwilioHttp] = []

    def dispatcher() -> Dispatcher:
        # Built on first use, inside the running loop: the HTTP client's connector binds to it.
        if not dispatcher_slot:
            http = TwilioHttp(settings.twilio_base_url, max_connections=max(settings.tenant_concurrency, 100) * 4)
            http_slot.append(http)
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

    # Not isolated_partitions (it kills the worker on a rebalance) and not take_events (it acks a batch that was
    # cancelled or raised): each record goes into a pipeline that starts it at once and acks in offset order.
    dispatching: Pipeline[Any] = _pipeline(streams, metrics, "dispatcher", settings.max_in_flight)
    logging_outcomes: Pipeline[Any] = _pipeline(streams, metrics, "logsink", settings.max_in_flight)
    batcher = Batcher(sink.write, settings.batch_size, settings.batch_within_seconds)

    async def drain() -> None:
        for name, pipeline in (("dispatcher", dispatching), ("logsink", logging_outcomes)):
            acked, released = await pipeline.drain(settings.drain_seconds)
            metrics.drained.labels(name, "acked").inc(acked)
            metrics.drained.labels(name, "released").inc(released)
            if acked or released:
                log.info("%s drained: %d records finished and acked, %d given back unacked", name, acked, released)

    app.drain_hooks.append(drain)

    @app.agent(streams.requested, name="smsdispatch.dispatcher")
    async def dispatch(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            record = InboundRecord(
                key=event.key,
                value=event.value,
                partition=message.partition,
                offset=message.offset,
                timestamp=record_time(message.timestamp),
            )
            core = dispatcher()
            routed = core.route(record)
            handler = partial(core.handle, routed)
            await dispatching.submit(message.partition, message.offset, (manual, event), handler, key=routed.key)

    @app.agent(streams.outcomes, name="smsdispatch.logsink")
    async def record_outcomes(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            outcome = parse_outcome(message.topic, event.value)
            handler = partial(_log_one, batcher, outcome)
            # The sink reads three topics: each topic-partition gets its own ack order. (Two sharing a lane by a
            # hash collision would only ack more strictly in order, never out of it.)
            lane = hash((message.topic, message.partition))
            await logging_outcomes.submit(lane, message.offset, (manual, event), handler)

    @app.timer(interval=60.0)
    async def expire_ledger() -> None:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.REQUESTED}
        try:
            await dispatcher().expire(owned.__contains__)
        except Exception:
            log.exception("a ledger expiry pass failed; the next one retries")

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "tenants": len(streams.tenants_table.data), "ledger": len(ledger)})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        """200 once the tables are restored and no recovery runs; 503 before (a worker answers /health from
        the start, but handles no record until its ledger and tenant tables are back from their changelogs)."""
        restored = app.tables.recovery.completed.is_set() and not app.in_recovery
        return web.json({"ready": restored}, status=200 if restored else 503)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/twilio/status/{tenant_id}")
    class StatusCallback(View):
        """Twilio's delivery receipts (POST only: Faust answers 405 to other methods)."""

        async def post(self, request: Any, tenant_id: str) -> Any:
            form = {key: str(value) for key, value in (await request.post()).items()}
            public = (settings.public_url or "").rstrip("/")
            # Twilio signs the URL it called: ours as configured publicly, whatever proxy is in between.
            url = public + request.path_qs if public else str(request.url)
            try:
                status = status_from_callback(
                    tenants,
                    tenant_id,
                    request.query.get("request_id"),
                    url,
                    form,
                    request.headers.get("X-Twilio-Signature"),
                )
            except CallbackRejected as rejected:
                log.warning("status callback refused for tenant %s: %s", tenant_id, rejected)
                return self.text(str(rejected), status=rejected.status)
            await streams.publish(topics.STATUS, tenant_id.encode(), status.to_bytes())
            return self.text("", status=200)

    @app.on_after_configured.connect
    def _quiet(app_: Any, **_: Any) -> None:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        # One line per HTTP call to Twilio would drown the one line per outcome (and cost CPU at volume).
        logging.getLogger("httpx").setLevel(logging.WARNING)

    @app.on_before_shutdown.connect
    async def _close(app_: Any, **_: Any) -> None:
        # After the consumer has stopped, so no batch is using them any more.
        await sink.close()
        await progress.close()
        for http in http_slot:
            await http.aclose()

    _ = (keep_tenants, dispatch, record_outcomes, expire_ledger, health, ready, prometheus, StatusCallback, _close)
    return streams


def _retry_within(send_deadline: float) -> RetryPolicy:
    """429 retries get half the send deadline; the rest is for the last attempt and any reconciliation."""
    return RetryPolicy(max_elapsed=send_deadline / 2)


def _pipeline(streams: StreamsApp, metrics: DispatchMetrics, name: str, max_pending: int) -> Pipeline[Any]:
    """A pipeline whose tokens are (stream, event): acked through the stream (Faust's sensors see it)."""

    async def ack(token: tuple[Any, Any]) -> None:
        stream, event = token
        await stream.ack(event)

    def release(token: tuple[Any, Any]) -> None:
        streams.release(token[1])

    pipeline: Pipeline[Any] = Pipeline(ack=ack, release=release, max_pending=max_pending)
    metrics.held.labels(name).set_function(lambda: len(pipeline))
    return pipeline


async def _log_one(batcher: Batcher, outcome: Loggable | None, work: Work[Any]) -> None:
    if outcome is not None:
        await batcher.add(outcome)
