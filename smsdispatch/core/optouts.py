"""The worker's side of the suppression list: the view every worker follows, and the writes that change it.

A change (Twilio's 21610 seen by the dispatcher, an inbound STOP or START on any worker) is published to the
compacted ``sms.suppressions`` topic and returns once Kafka has it; only then is it applied to this worker's
view, so the view never holds what Kafka may not. Other workers apply it when their followers read it
(normally milliseconds; :mod:`smsdispatch.core.suppressions` states the limits).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from smsdispatch.contract import SuppressionSource, suppression_change, topics
from smsdispatch.core.inbound import OptOutChange
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.persist import ThrottledWarning, until_taken
from smsdispatch.core.suppressions import SuppressionView

log = logging.getLogger("smsdispatch.optouts")

Publish = Callable[[str, bytes, bytes | None], Awaitable[Any]]


class SuppressionList:
    """What the dispatcher's admission needs (:class:`~smsdispatch.core.admission.OptOuts`), and what the
    inbound webhook calls."""

    def __init__(self, view: SuppressionView, publish: Publish, metrics: DispatchMetrics | None = None) -> None:
        self._view = view
        self._publish = publish
        self._metrics = metrics or DispatchMetrics()
        self._kafka_trouble = ThrottledWarning(log)

    async def loaded(self) -> None:
        await self._view.loaded()

    def is_opted_out(self, tenant_id: str, number: str) -> bool:
        return self._view.is_suppressed(tenant_id, number)

    async def opt_out(self, tenant_id: str, number: str) -> None:
        await self._change(OptOutChange(tenant_id, number, opted_out=True), SuppressionSource.PROVIDER_21610)

    async def inbound(self, change: OptOutChange) -> None:
        """A recipient's STOP or START, from Twilio's inbound-message webhook."""
        await self._change(change, SuppressionSource.INBOUND_STOP)

    async def _change(self, change: OptOutChange, source: SuppressionSource) -> None:
        key, value = suppression_change(change.tenant_id, change.number, change.opted_out, source)
        await until_taken(
            lambda: self._publish(topics.SUPPRESSIONS, key, value), self._kafka_trouble, "a suppression-list write"
        )
        if change.opted_out:
            self._view.suppress_locally(change.tenant_id, change.number)
        else:
            self._view.release_locally(change.tenant_id, change.number)
        what = "added" if change.opted_out else "removed"
        self._metrics.opt_outs.labels(change.tenant_id, source.value, what).inc()
