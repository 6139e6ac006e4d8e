"""The worker's :class:`~smsdispatch.core.tracking.Tracker`: status polling and tenant webhooks, over the two
pending-work tables (polls, webhooks) written through their changelogs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from smsdispatch.adapters.twilio import RetryPolicy, TwilioHttp, TwilioProvider
from smsdispatch.contract.settings import Settings
from smsdispatch.core.durable_map import DurableMap
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.polling import PollOptions, StatusPoller
from smsdispatch.core.tenants import TenantDirectory
from smsdispatch.core.tracking import Tracker
from smsdispatch.core.webhook_delivery import DeliveryOptions, DeliveryResult, WebhookDeliverer, schedule_from
from smsdispatch.runtime.app import StreamsApp, table_store


def build_tracker(
    streams: StreamsApp,
    settings: Settings,
    tenants: TenantDirectory,
    http: TwilioHttp,
    webhook_client: httpx.AsyncClient,
    metrics: DispatchMetrics,
    partition_for: Callable[[str], int],
) -> Tracker:
    """Status polling and webhooks over the worker's two pending-work tables."""
    poller = StatusPoller(
        tenants=tenants.lookup,
        providers=lambda tenant: TwilioProvider(tenant.config, http, RetryPolicy(max_elapsed=10.0)),
        options=PollOptions(poll_seconds=settings.status_poll_seconds),
        on_result=metrics.count_poll,
    )
    options = DeliveryOptions(
        retry_hours=settings.webhook_retry_hours, schedule=schedule_from(settings.webhook_retry_base_seconds)
    )

    def deliverer(on_result: Callable[[DeliveryResult], Awaitable[None]]) -> WebhookDeliverer:
        return WebhookDeliverer(
            client=webhook_client,
            tenants=tenants.lookup,
            options=options,
            on_result=on_result,
            count=metrics.count_webhook,
        )

    return Tracker(
        polls=DurableMap(table_store(streams.polls_table), streams.changelog_writer(streams.polls_table)),
        webhooks=DurableMap(table_store(streams.webhooks_table), streams.changelog_writer(streams.webhooks_table)),
        tenants=tenants.lookup,
        poller=poller,
        deliverer=deliverer,
        publish=streams.publish,
        partition_for=partition_for,
        poll_seconds=settings.status_poll_seconds,
        metrics=metrics,
    )
