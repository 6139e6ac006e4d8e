"""The two compacted topics every worker follows whole: ``sms.tenants`` and ``sms.suppressions``.

Each follower is a :class:`~smsdispatch.runtime.compacted.CompactedFollower` (a ``mode`` service: start and stop
it with the app) that reads every partition of its topic from the beginning with a plain consumer in no group,
so it never takes part in, nor waits for, a rebalance, and never commits. What the records mean, and what a
lookup guarantees, is the view's business, in the core: :class:`~smsdispatch.core.tenant_view.TenantView` and
:class:`~smsdispatch.core.suppressions.SuppressionView`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smsdispatch.adapters.sms import ProviderName
from smsdispatch.contract.topics import SUPPRESSIONS, TENANTS
from smsdispatch.core.suppressions import SuppressionView
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.core.tenants import ConfigOpener, PlatformOpener
from smsdispatch.runtime.compacted import CompactedFollower


class TenantFollower(CompactedFollower):
    """Feeds a :class:`TenantView` (``.view``) from every partition of ``sms.tenants``, from the beginning, for as
    long as the service runs; start and stop it with the app. It never commits and never joins a group."""

    def __init__(
        self,
        broker_url: str,
        open_config: ConfigOpener,
        *,
        partitions: int,
        wait: float = 2.0,
        open_platform: PlatformOpener | None = None,
        default_provider: ProviderName | None = None,
        topic: str = TENANTS,
        consumer_factory: Callable[[], Any] | None = None,
        retry_seconds: float = 1.0,
        **kwargs: Any,
    ) -> None:
        # The view asks the follower where the topic ends; a lambda, since the method is bound only once built.
        self.view = TenantView(
            open_config,
            lambda: self.end_offsets(),
            wait=wait,
            open_platform=open_platform,
            default_provider=default_provider,
        )
        super().__init__(
            broker_url,
            self.view,
            topic=topic,
            partitions=partitions,
            label="the tenant view",
            unit="tenants",
            consumer_factory=consumer_factory,
            retry_seconds=retry_seconds,
            **kwargs,
        )


class SuppressionFollower(CompactedFollower):
    """Feeds a :class:`SuppressionView` (``.view``) from every partition of ``sms.suppressions``, from the
    beginning, for as long as the service runs; start and stop it with the app. It never commits and never
    joins a group."""

    def __init__(
        self,
        broker_url: str,
        *,
        partitions: int,
        topic: str = SUPPRESSIONS,
        consumer_factory: Callable[[], Any] | None = None,
        retry_seconds: float = 1.0,
        **kwargs: Any,
    ) -> None:
        # A lambda: the view needs the follower's loaded(), and the follower needs the view to feed.
        self.view = SuppressionView(lambda: self.loaded())
        super().__init__(
            broker_url,
            self.view,
            topic=topic,
            partitions=partitions,
            label="the suppression list",
            unit="opted-out numbers",
            consumer_factory=consumer_factory,
            retry_seconds=retry_seconds,
            **kwargs,
        )
