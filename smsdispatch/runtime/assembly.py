"""The worker's parts, built once per app: what the agents, timers and pages of :mod:`smsdispatch.runtime.worker`
share.

:class:`WorkerParts` builds the parts that need no running loop at once (tenants, opt-outs, the ledger, the log
sink, the pipelines, the liveness checks) and the ones whose HTTP clients bind to the running loop on first use
(:meth:`WorkerParts.dispatcher`, :meth:`WorkerParts.tracker`). :meth:`WorkerParts.gate` makes a record's
handler wait, when it must, until the worker's state for its partition is restored and the tenant view loaded.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from aiokafka.partitioner import murmur2

from smsdispatch.adapters.crypto import Keyring
from smsdispatch.adapters.msg91 import Msg91Account, Msg91Http, Msg91Provider
from smsdispatch.adapters.twilio import RetryPolicy, TwilioHttp, TwilioProvider
from smsdispatch.contract import TenantConfig
from smsdispatch.contract.settings import Settings
from smsdispatch.core.admission import Admission
from smsdispatch.core.dispatch import Dispatcher
from smsdispatch.core.dispatch_model import DispatcherOptions
from smsdispatch.core.durable_map import DurableMap
from smsdispatch.core.ledger import Ledger
from smsdispatch.core.liveness import Liveness
from smsdispatch.core.logsink import Batcher, LogSink
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.optouts import SuppressionList
from smsdispatch.core.pipeline import Pipeline, Work
from smsdispatch.core.polling import PollOptions, StatusPoller
from smsdispatch.core.rates import SendingRates
from smsdispatch.core.senders import SenderPool
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.core.tracking import Tracker
from smsdispatch.core.webhook_delivery import (
    DeliveryOptions,
    DeliveryResult,
    WebhookDeliverer,
    new_webhook_client,
    schedule_from,
)
from smsdispatch.runtime.app import StreamsApp
from smsdispatch.runtime.broker_health import BrokerHealth
from smsdispatch.runtime.followers import SuppressionFollower, TenantFollower
from smsdispatch.runtime.write_watch import WriteWatch

Handler = Callable[[Work[Any]], Awaitable[None]]


@functools.lru_cache(maxsize=100_000)
def home_partition(tenant_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives a tenant_id key: Java's, aiokafka's, ours.
    Cached: murmur2 is pure Python here and every request and outcome asks, for the same few tenants."""
    hashed: int = murmur2(tenant_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class WorkerParts:
    def __init__(
        self,
        streams: StreamsApp,
        settings: Settings,
        keyring: Keyring,
        metrics: DispatchMetrics | None = None,
        tenant_view: TenantView | None = None,
    ) -> None:
        """``tenant_view``: the view of every tenant (default: one following all of ``sms.tenants``, started and
        stopped with the app)."""
        app = streams.app
        self.streams, self.settings = streams, settings
        self.metrics = metrics or DispatchMetrics()
        self.follower: TenantFollower | None = None
        if tenant_view is None:
            # A child of the app, so started and stopped with it: it loads before the web server (a child added
            # later) answers callbacks, and stops after it.
            self.follower = TenantFollower(
                settings.broker,
                keyring.unseal,
                partitions=settings.partitions,
                open_platform=keyring.unseal_platform,
                default_provider=settings.default_provider,
            )
            app.add_dependency(self.follower)
            tenant_view = self.follower.view
        #: Every tenant, not only those of this worker's partitions: a callback may reach any worker.
        self.tenant_view: TenantView = tenant_view
        # Every tenant's suppression list, for the same reason (an inbound STOP reaches any worker), and loaded
        # before the dispatcher's first check: a restart never sends to a number that opted out.
        suppressions = SuppressionFollower(settings.broker, partitions=settings.partitions)
        app.add_dependency(suppressions)
        self.opt_outs = SuppressionList(suppressions.view, streams.publish, self.metrics)
        self.ledger = Ledger(streams.state.table("ledger"))
        self.sink = LogSink(settings.database_url, self.metrics)
        self.batcher = Batcher(self.sink.write, settings.batch_size, settings.batch_within_seconds)
        self.broker = BrokerHealth(lambda: app.producer.probe())
        self.dispatching = self._pipeline("dispatcher")
        self.logging_outcomes = self._pipeline("logsink")
        self.writes = WriteWatch(
            lambda: app.producer.kafka_producer(),
            lambda topic, n: self.metrics.kafka_writes_stuck.labels(topic).inc(n),
        )
        self.liveness = Liveness(
            stall_seconds=settings.stall_after,
            pipelines={"dispatcher": self.dispatching, "logsink": self.logging_outcomes},
            oldest_write_age=self.writes.oldest_age,
            kafka_reachable=lambda: self.broker.reachable,
            trouble=streams.state.trouble,
        )
        self.metrics.kafka_write_wait.set_function(self.writes.oldest_age)
        self.metrics.degraded.set_function(lambda: float(bool(self.liveness.verdict().reasons)))
        self._http: TwilioHttp | None = None
        self._msg91: Msg91Provider | None = None
        self._dispatcher: Dispatcher | None = None
        self._tracker: Tracker | None = None
        self._webhook_client: httpx.AsyncClient | None = None

    def partition_for(self, tenant_id: str) -> int:
        return home_partition(tenant_id, self.settings.partitions)

    def gate(self, partition: int, handler: Handler) -> Handler:
        """``handler``, made to wait first until ``partition``'s state is restored and the tenant view loaded
        (records of other partitions never wait for it); ``handler`` itself once both are."""
        state, follower = self.streams.state, self.follower
        if state.is_ready(partition) and (follower is None or follower.is_loaded):
            return handler

        async def when_ready(work: Work[Any]) -> None:
            await state.ready(partition)
            if follower is not None:
                await follower.loaded()
            await handler(work)

        return when_ready

    def twilio_http(self) -> TwilioHttp:
        # Built on first use, inside the running loop: the HTTP client's connector binds to it.
        if self._http is None:
            connections = max(self.settings.tenant_concurrency, 100) * 4
            self._http = TwilioHttp(self.settings.twilio_base_url, max_connections=connections)
        return self._http

    def msg91(self) -> Msg91Provider | None:
        """The platform's MSG91 account when it is the default provider (built on first use, in the running loop)."""
        settings = self.settings
        if self._msg91 is None and settings.default_provider == "msg91":
            if settings.msg91_authkey is None or settings.msg91_template_id is None:
                raise ValueError("SMSDISPATCH_DEFAULT_PROVIDER=msg91 needs SMSDISPATCH_MSG91_AUTHKEY and _TEMPLATE_ID")
            account = Msg91Account(
                authkey=settings.msg91_authkey,
                template_id=settings.msg91_template_id,
                sender=settings.msg91_sender,
                body_var=settings.msg91_body_var,
            )
            retry = RetryPolicy(max_elapsed=settings.send_deadline_seconds / 2)
            http = Msg91Http(settings.msg91_base_url, max_connections=max(settings.tenant_concurrency, 100))
            self._msg91 = Msg91Provider(account, http, retry)
        return self._msg91

    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            settings = self.settings
            self._dispatcher = Dispatcher(
                tenants=self.tenant_view.directory,
                ledger=self.ledger,
                publish=self.streams.publish,
                senders=SenderPool(
                    self.twilio_http(),
                    # 429 retries get half the send deadline; the rest is for the last attempt and reconciliation.
                    retry=RetryPolicy(max_elapsed=settings.send_deadline_seconds / 2),
                    public_url=settings.public_url,
                    msg91=self.msg91(),
                ),
                options=DispatcherOptions(
                    tenant_concurrency=settings.tenant_concurrency,
                    ledger_retention=timedelta(days=settings.ledger_retention_days),
                    partition_for=self.partition_for,
                    tenants_caught_up=self._tenants_caught_up,
                    send_deadline=settings.send_deadline_seconds,
                ),
                metrics=self.metrics,
                admission=Admission(opt_outs=self.opt_outs, rates=SendingRates(), metrics=self.metrics),
            )
        return self._dispatcher

    def tracker(self) -> Tracker:
        """The status poller and webhook deliverer (built on first use, inside the running loop)."""
        if self._tracker is None:
            self._tracker = self._build_tracker()
        return self._tracker

    async def aclose(self) -> None:
        """After the consumer stopped (no batch uses them any more): the sink, the deliveries, the HTTP clients."""
        await self.sink.close()
        if self._tracker is not None:
            await self._tracker.stop_deliveries()
        if self._http is not None:
            await self._http.aclose()
        if self._msg91 is not None:
            await self._msg91.aclose()
        if self._webhook_client is not None:
            await self._webhook_client.aclose()

    async def _tenants_caught_up(self, tenant_ids: set[str]) -> None:
        await self.tenant_view.caught_up()

    def _pipeline(self, name: str) -> Pipeline[Any]:
        """A pipeline whose tokens are Faust messages; a record done is reported to the worker's committer. A
        record given back needs nothing: its offset is never reported, and Faust re-reads from the committed
        offset."""
        commits = self.streams.commits

        async def ack(message: Any) -> None:
            commits.done(message.topic, message.partition, message.offset)

        pipeline: Pipeline[Any] = Pipeline(ack=ack, max_pending=self.settings.max_in_flight)
        self.metrics.held.labels(name).set_function(lambda: len(pipeline))
        self.metrics.pipeline_stalled.labels(name).set_function(pipeline.stalled_for)
        return pipeline

    def _build_tracker(self) -> Tracker:
        """Status polling and webhooks over the worker's two pending-work tables."""
        settings, metrics, tenants = self.settings, self.metrics, self.tenant_view.directory
        http = self.twilio_http()
        client = self._webhook_client = new_webhook_client()
        poller = StatusPoller(
            tenants=tenants.lookup,
            providers=lambda tenant: TwilioProvider(_twilio(tenant), http, RetryPolicy(max_elapsed=10.0)),
            options=PollOptions(poll_seconds=settings.status_poll_seconds),
            on_result=metrics.count_poll,
        )
        options = DeliveryOptions(
            retry_hours=settings.webhook_retry_hours, schedule=schedule_from(settings.webhook_retry_base_seconds)
        )

        def deliverer(on_result: Callable[[DeliveryResult], Awaitable[None]]) -> WebhookDeliverer:
            return WebhookDeliverer(
                client=client, tenants=tenants.lookup, options=options, on_result=on_result, count=metrics.count_webhook
            )

        state = self.streams.state
        return Tracker(
            polls=DurableMap(state.table("polls")),
            webhooks=DurableMap(state.table("webhooks")),
            tenants=tenants.lookup,
            poller=poller,
            deliverer=deliverer,
            publish=self.streams.publish,
            partition_for=self.partition_for,
            poll_seconds=settings.status_poll_seconds,
            metrics=metrics,
        )


def _twilio(tenant: ReadyTenant) -> TenantConfig:
    """The Twilio configuration of a tenant whose messages are polled (only Twilio's are: polling.should_track)."""
    if tenant.twilio is None:
        raise ValueError(f"tenant {tenant.record.tenant_id!r} does not send through a Twilio account")
    return tenant.twilio
