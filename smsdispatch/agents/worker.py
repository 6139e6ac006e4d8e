"""The worker: the Faust app with its agents (tenants, dispatcher, log sink) and web pages.

Each agent catches every error inside its loop: Faust acks an event whose agent raised and never retries it
(shared/reference/faust-kafka.md), so an escaping exception would be a lost message. Batches are taken with
``take_events``, which acks a batch only after the loop body has returned.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.partitioner import murmur2
from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smsdispatch.agents.dispatch import Dispatcher, DispatcherOptions, InboundRecord
from smsdispatch.agents.logsink import LogSink, parse_outcomes
from smsdispatch.agents.metrics import DispatchMetrics
from smsdispatch.agents.senders import SenderPool
from smsdispatch.agents.status import CallbackRejected, status_from_callback
from smsdispatch.crypto import Keyring
from smsdispatch.providers import TwilioHttp
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
                    senders=SenderPool(http, public_url=settings.public_url),
                    options=DispatcherOptions(
                        tenant_concurrency=settings.tenant_concurrency,
                        ledger_retention=timedelta(days=settings.ledger_retention_days),
                        partition_for=lambda tenant_id: home_partition(tenant_id, settings.partitions),
                        tenants_caught_up=progress.caught_up,
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

    # One actor per partition: a batch held up by one tenant's 429 storm does not hold up other partitions.
    # Each actor's batches come from its own partition only, which is also what the ledger's writes assume.
    @app.agent(streams.requested, name="smsdispatch.dispatcher", isolated_partitions=True)
    async def dispatch(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_seconds):
            records = [
                InboundRecord(
                    key=event.key,
                    value=event.value,
                    partition=event.message.partition,
                    timestamp=record_time(event.message.timestamp),
                )
                for event in events
            ]
            await _until_done(lambda records=records: dispatcher().process_batch(records), "dispatch batch")

    @app.agent(streams.outcomes, name="smsdispatch.logsink")
    async def record_outcomes(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=0.2):
            outcomes = parse_outcomes([(event.message.topic, event.value) for event in events])
            if outcomes:
                await _until_done(lambda outcomes=outcomes: sink.write(outcomes), "log sink batch")

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "tenants": len(streams.tenants_table.data), "ledger": len(ledger)})

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

    _ = (keep_tenants, dispatch, record_outcomes, health, prometheus, StatusCallback, _close)
    return streams


async def _until_done(work: Any, what: str) -> None:
    """Run ``work`` until it succeeds. Faust would ack the batch if we raised: a lost message."""
    delay = 0.5
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
