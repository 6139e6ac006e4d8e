"""Whether a request may be sent now: the recipient's opt-out, the request's expiry, the tenant's rate.

:meth:`Admission.admit` runs after the tenant lookup and before anything is marked ``sending``, so a request it
refuses is answered without an HTTP call and without a ledger entry that claims it may have been sent. In order:

1. **Opted out** (``recipient_opted_out``, provider_code 21610): the tenant's suppression list holds the
   number. The list is loaded before the first check, so a restart never sends to a number that opted out.
2. **Expired** (``expired``): ``expires_at`` has passed.
3. **Rate**: the request waits for its turn in its tenant's lane (:mod:`smsdispatch.core.rates`), counted
   in segments; a request whose ``expires_at`` comes first gives up its place and fails ``expired``.

Past admission the provider checks ``expires_at`` again before every attempt (429 retries included) and sets
Twilio's ``ValidityPeriod`` to the seconds left. :meth:`Admission.learn` adds a recipient to the list when
Twilio answers 21610, so the tenant's next request to that number is refused here.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from smsdispatch.adapters.twilio import UNSUBSCRIBED_RECIPIENT, segment_info
from smsdispatch.contract import ErrorCode, ErrorInfo, Outcome, SmsFailed, SmsRequested
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.rates import Rate, SendingRates

log = logging.getLogger("smsdispatch.admission")


class OptOuts(Protocol):
    """The tenants' suppression lists, as the dispatcher needs them."""

    async def loaded(self) -> None:
        """Returns once every entry that was on the list when the worker started is held."""

    def is_opted_out(self, tenant_id: str, number: str) -> bool: ...

    async def opt_out(self, tenant_id: str, number: str) -> None:
        """Add the number to the tenant's list because Twilio answered 21610; returns once durable."""


class NoOptOuts:
    """A list that is always empty (tests and tools that do not keep one)."""

    async def loaded(self) -> None:
        return None

    def is_opted_out(self, tenant_id: str, number: str) -> bool:
        return False

    async def opt_out(self, tenant_id: str, number: str) -> None:
        return None


class Admission:
    def __init__(
        self,
        opt_outs: OptOuts | None = None,
        rates: SendingRates | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self._opt_outs = opt_outs or NoOptOuts()
        self._rates = rates or SendingRates()
        self._metrics = metrics or DispatchMetrics()
        self._loaded = False

    async def admit(self, request: SmsRequested, rate: Rate, now: datetime) -> ErrorInfo | None:
        """None once the request may be sent (after waiting for its turn), else why it is not sent. ``rate()`` is
        the tenant's rate as its current record says (read again while the request waits)."""
        if not self._loaded:
            await self._opt_outs.loaded()
            self._loaded = True
        if self._opt_outs.is_opted_out(request.tenant_id, request.to):
            return ErrorInfo(
                code=ErrorCode.RECIPIENT_OPTED_OUT,
                message=f"{request.to} opted out of tenant {request.tenant_id!r}'s messages; nothing was sent",
                provider_code=UNSUBSCRIBED_RECIPIENT,
            )
        left = (request.expires_at - now).total_seconds() if request.expires_at is not None else None
        if left is not None and left <= 0:
            return _expired(f"it expired {-left:.1f}s before it could be sent")
        throttled = rate() is not None
        # Counting segments costs a pass over the body: only a throttled tenant's requests need it.
        segments = segment_info(request.body)[0] if throttled else 1
        waiting = self._metrics.rate_waiting.labels(request.tenant_id) if throttled else None
        if waiting is not None:
            waiting.inc()
        try:
            if not await self._rates.turn(request.tenant_id, rate, segments, within=left):
                return _expired(f"it expired while waiting for its turn under tenant {request.tenant_id!r}'s rate")
        finally:
            if waiting is not None:
                waiting.dec()
        return None

    async def learn(self, outcome: Outcome) -> None:
        """Remember what an outcome tells about the recipient: a 21610 puts it on the tenant's list."""
        if not isinstance(outcome, SmsFailed) or outcome.error.provider_code != UNSUBSCRIBED_RECIPIENT:
            return
        if outcome.error.code is not ErrorCode.PROVIDER_REJECTED or not outcome.tenant_id or not outcome.to:
            return
        await self._opt_outs.opt_out(outcome.tenant_id, outcome.to)
        log.info("recipient added to tenant %s's suppression list after Twilio's 21610", outcome.tenant_id)


def _expired(why: str) -> ErrorInfo:
    return ErrorInfo(code=ErrorCode.EXPIRED, message=f"Not sent: {why}.", retryable=False)
