"""Sending one request through its tenant's provider (its own Twilio account, or the platform's default, MSG91),
with reconciliation instead of blind retries.

:func:`send_one` decides, for a request that is marked ``sending`` in the ledger, what reaches the provider:

* a request left ``sending`` by an earlier run is first looked up in Twilio's message list; only when Twilio
  has no such message is it sent (where the list cannot be read, the outcome is ``outcome_unknown``);
* an unknown outcome (5xx, timeout after sending) is looked up the same way: found means dispatched; not
  found means Twilio accepted nothing (``provider_unavailable``, retryable: a replay may resend it); not
  confirmable means ``outcome_unknown``. It is never resent here, so a slow message list cannot cause a
  second SMS. MSG91 has no look-up at all: its unknown outcomes stay ``outcome_unknown``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

from smsdispatch.adapters.msg91 import Msg91Provider, Msg91Template, crqid_for
from smsdispatch.adapters.sms import ProviderName
from smsdispatch.adapters.twilio import (
    OutgoingSms,
    ProviderError,
    ReconciliationUnavailable,
    RetryPolicy,
    SendResult,
    TwilioHttp,
    TwilioProvider,
    UnknownOutcome,
)
from smsdispatch.contract import ErrorCode, ErrorInfo, Outcome, SmsRequested, TenantConfig
from smsdispatch.core.ledger import LedgerEntry
from smsdispatch.core.outcomes import dispatched_outcome, error_info, failed_outcome
from smsdispatch.core.tenants import ReadyTenant


class Sender(Protocol):
    #: The provider's name, for the outcomes' messages ("Twilio", "MSG91"), and as outcomes name it.
    name: str
    provider: ProviderName
    #: Whether Twilio stores bodies exactly as sent. Trial accounts prefix them and Messaging Services may
    #: re-encode them, so for those "no such message in the list" proves nothing.
    exact_bodies: bool

    async def send(self, message: OutgoingSms) -> SendResult: ...

    async def find_sent(
        self, to: str, body: str, sent_after: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None: ...


class Senders(Protocol):
    """Where the dispatcher gets the sender for a request: :class:`SenderPool` in production, fakes in tests."""

    def sender_for(self, tenant: ReadyTenant, request: SmsRequested) -> Sender: ...


class SenderPool:
    """One provider per tenant configuration, all sharing the process's HTTP client; the platform's MSG91 account
    for tenants sent through the platform default."""

    def __init__(
        self,
        http: TwilioHttp,
        retry: RetryPolicy | None = None,
        public_url: str | None = None,
        msg91: Msg91Provider | None = None,
    ) -> None:
        self._http = http
        self._retry = retry
        self._public_url = public_url.rstrip("/") if public_url else None
        self._msg91 = msg91
        self._providers: dict[str, tuple[TenantConfig, TwilioProvider]] = {}

    def sender_for(self, tenant: ReadyTenant, request: SmsRequested) -> Sender:
        twilio = tenant.twilio
        if twilio is None:
            return self._platform_sender(tenant, request)
        cached = self._providers.get(tenant.record.tenant_id)
        if cached is None or cached[0] is not twilio:
            cached = (twilio, TwilioProvider(twilio, self._http, self._retry))
            self._providers[tenant.record.tenant_id] = cached
        initial_status = "accepted" if twilio.uses_messaging_service else "queued"
        # Receipts are accepted only with a signature checked against the auth token: without one, asking
        # Twilio for callbacks would only produce refused requests.
        callback = self.status_callback_url(request) if twilio.signing_token is not None else None
        exact_bodies = tenant.record.account_type != "Trial" and not twilio.uses_messaging_service
        return _WithCallback(cached[1], callback, initial_status, exact_bodies)

    def _platform_sender(self, tenant: ReadyTenant, request: SmsRequested) -> Sender:
        if tenant.provider != "msg91" or self._msg91 is None:
            raise RuntimeError(f"no {tenant.provider} account is configured for the platform default")
        options = request.provider_options.msg91 if request.provider_options is not None else None
        template = Msg91Template(options.template_id, options.variables) if options is not None else None
        return _Msg91Request(self._msg91, crqid_for(request.tenant_id, request.request_id), template)

    def status_callback_url(self, request: SmsRequested) -> str | None:
        """Where Twilio reports delivery: the worker's receiver, with the ids that route the receipt back."""
        if self._public_url is None:
            return None
        tenant = quote(request.tenant_id, safe="")
        return f"{self._public_url}/twilio/status/{tenant}?request_id={quote(request.request_id, safe='')}"


class _WithCallback:
    name = "Twilio"
    provider: ProviderName = "twilio"

    def __init__(self, provider: TwilioProvider, callback: str | None, initial_status: str, exact_bodies: bool) -> None:
        self.exact_bodies = exact_bodies
        self._provider = provider
        self._callback = callback
        self._initial_status = initial_status

    async def send(self, message: OutgoingSms) -> SendResult:
        return await self._provider.send(dataclasses.replace(message, status_callback=self._callback))

    async def find_sent(
        self, to: str, body: str, sent_after: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        found = await self._provider.find_sent(to, body, sent_after, exclude=exclude)
        # sms.dispatched carries Twilio's *initial* status (docs/contract.md); where the message got to since then
        # arrives as delivery receipts on sms.status.
        return dataclasses.replace(found, status=self._initial_status) if found is not None else None


class _Msg91Request:
    """The platform's MSG91 account, sending one request: its CRQID, and its own template when it names one."""

    name = "MSG91"
    provider: ProviderName = "msg91"
    exact_bodies = False

    def __init__(self, provider: Msg91Provider, crqid: str, template: Msg91Template | None) -> None:
        self._provider = provider
        self._crqid = crqid
        self._template = template

    async def send(self, message: OutgoingSms) -> SendResult:
        return await self._provider.send(dataclasses.replace(message, reference=self._crqid), self._template)

    async def find_sent(
        self, to: str, body: str, sent_after: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        return await self._provider.find_sent(to, body, sent_after, exclude)


async def send_one(
    sender: Sender,
    request: SmsRequested,
    previous: LedgerEntry | None,
    now: datetime,
    claimed: Collection[str] = (),
) -> Outcome:
    """Send ``request`` at most once; return its outcome. Raises only on bugs (the caller reports those).

    ``claimed`` holds the SIDs of messages already known to be other requests': a look-up never adopts them.
    """
    prior_attempts = previous.attempts if previous is not None else 0
    if previous is not None:
        # An earlier run marked it "sending" and died: Twilio may have it already.
        found = await _look_up(sender, request, previous.since or previous.at, claimed)
        if isinstance(found, SendResult):
            return dispatched_outcome(request, found, attempts=max(prior_attempts, 1))
        if isinstance(found, ErrorInfo):
            return failed_outcome(request, found, attempts=prior_attempts, provider=sender.provider)
        if not sender.exact_bodies:
            return failed_outcome(request, _unconfirmable(sender), attempts=prior_attempts, provider=sender.provider)
    try:
        result = await sender.send(OutgoingSms(request.to, request.body, expires_at=request.expires_at))
    except UnknownOutcome as unknown:
        found = await _look_up(sender, request, unknown.sent_after, claimed)
        if isinstance(found, SendResult):
            return dispatched_outcome(request, found, attempts=unknown.attempts)
        if isinstance(found, ErrorInfo):
            return failed_outcome(request, found, attempts=unknown.attempts, provider=sender.provider)
        if not sender.exact_bodies:
            return failed_outcome(
                request,
                _unconfirmable(sender, unknown.provider_code),
                attempts=unknown.attempts,
                provider=sender.provider,
            )
        confirmed_absent = ErrorInfo(
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            message=f"{unknown.message} {sender.name}'s message list shows it was not accepted, so it was not sent.",
            provider_code=unknown.provider_code,
            retryable=True,
        )
        return failed_outcome(request, confirmed_absent, attempts=unknown.attempts, provider=sender.provider)
    except ProviderError as error:
        return failed_outcome(request, error_info(error), attempts=error.attempts, provider=sender.provider)
    return dispatched_outcome(request, result, attempts=result.attempts)


async def _look_up(
    sender: Sender, request: SmsRequested, since: datetime, claimed: Collection[str]
) -> SendResult | ErrorInfo | None:
    """The provider's answer to "did you accept this?": the message, None for no, or why nobody can tell."""
    try:
        return await sender.find_sent(request.to, request.body, since, claimed)
    except ReconciliationUnavailable as error:
        reason = error.message
    except ProviderError as error:
        reason = f"looking the message up failed: {error.message}"
    return ErrorInfo(
        code=ErrorCode.OUTCOME_UNKNOWN,
        message=f"{sender.name} may have accepted this message and it could not be confirmed: {reason}",
        retryable=False,
    )


def _unconfirmable(sender: Sender, provider_code: int | None = None) -> ErrorInfo:
    why = (
        "MSG91 offers no look-up to prove it did not"
        if sender.name == "MSG91"
        else "this account's message list cannot prove it did not (a trial account or a Messaging Service may "
        "change the body Twilio stores)"
    )
    return ErrorInfo(
        code=ErrorCode.OUTCOME_UNKNOWN,
        message=f"{sender.name} may have accepted this message, and {why}.",
        provider_code=provider_code,
    )
