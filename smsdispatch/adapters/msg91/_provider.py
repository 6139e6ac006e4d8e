"""Sending through MSG91's Flow API (v5), as the platform's default provider.

One request per SMS: ``POST /api/v5/flow/`` with the ``authkey`` header and
``{"template_id", "short_url": "0", "sender"?, "CRQID"?, "recipients": [{"mobiles", <variables>, <body var>}]}``.
The number goes without its ``+``; the body travels in the template variable ``body_var``; the request's own id
(``OutgoingSms.reference``) goes in ``CRQID``, which MSG91 echoes in its delivery reports.

What is sent, and when it is not sent again:

* ``{"type": "error"}`` is a refusal whatever the HTTP status (MSG91 answers errors with 200): the code decides
  (207/208/418 auth, 301/302/303/505 the account, anything else the message), MSG91's code kept where numeric;
* retried only what cannot have been sent: a connection never established (:func:`nothing_was_sent`), and 429;
* a 5xx, a timeout or a connection lost after the request went out is :class:`UnknownOutcome`: MSG91 may have
  accepted it, documents no look-up by our id (:meth:`Msg91Provider.find_sent` says so), so the dispatcher
  reports ``outcome_unknown`` and never resends blindly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
from pydantic import SecretStr

from smsdispatch.adapters.msg91._wire import Msg91Http
from smsdispatch.adapters.sms import (
    AccountBlocked,
    AuthenticationError,
    Expired,
    InvalidMessage,
    MessageRejected,
    OutgoingSms,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ReconciliationUnavailable,
    RetryPolicy,
    SendResult,
    UnknownOutcome,
    nothing_was_sent,
)
from smsdispatch.contract.segments import segment_info

FLOW_PATH = "/api/v5/flow/"
#: MSG91's codes (legacy docs; their use in v5 is unconfirmed) that refuse the credentials or the caller.
AUTH_CODES = frozenset({"207", "208", "418"})
#: Codes that refuse the account for now: insufficient balance, account expired or banned, demo account.
ACCOUNT_CODES = frozenset({"301", "302", "303", "505"})


@dataclass(frozen=True)
class Msg91Template:
    """A Flow template and the variables to fill it with (India's DLT rules want a registered template per message
    type: a request may name its own, ``provider_options.msg91``)."""

    template_id: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Msg91Account:
    """The platform's MSG91 account (``SMSDISPATCH_MSG91_*``). ``authkey`` is a secret: never logged or printed."""

    authkey: SecretStr
    template_id: str
    sender: str | None = None
    body_var: str = "body"


@dataclass(frozen=True, slots=True)
class _Sent:
    to: str
    body: str
    sent_after: datetime


class Msg91Provider:
    """The platform's MSG91 account. One per process."""

    name = "MSG91"
    #: MSG91 lists no messages to compare bodies with: an unknown outcome stays unknown.
    exact_bodies = False

    def __init__(self, account: Msg91Account, http: Msg91Http, retry: RetryPolicy | None = None) -> None:
        self._account = account
        self._http = http
        self._retry = retry if retry is not None else RetryPolicy()
        self._headers = {"authkey": account.authkey.get_secret_value()}

    def __repr__(self) -> str:
        return f"Msg91Provider(template_id={self._account.template_id!r}, sender={self._account.sender!r})"

    def payload(self, message: OutgoingSms, template: Msg91Template | None = None) -> dict[str, Any]:
        """The Flow request's JSON body for ``message`` (the platform's template unless ``template`` is given)."""
        account = self._account
        recipient: dict[str, str] = dict(template.variables) if template is not None else {}
        recipient["mobiles"] = message.to.removeprefix("+")
        recipient[account.body_var] = message.body
        body: dict[str, Any] = {
            "template_id": template.template_id if template is not None else account.template_id,
            "short_url": "0",
            "recipients": [recipient],
        }
        if account.sender:
            body["sender"] = account.sender
        if message.reference:
            body["CRQID"] = message.reference
        return body

    async def send(self, message: OutgoingSms, template: Msg91Template | None = None) -> SendResult:
        """Send ``message``; retried only on 429 and on connections that never carried the request.

        Raises :class:`InvalidMessage` (before any HTTP call), :class:`AuthenticationError`,
        :class:`AccountBlocked`, :class:`MessageRejected`, :class:`RateLimited` / :class:`ProviderUnavailable` once
        retries run out, :class:`UnknownOutcome`, or :class:`Expired` when ``expires_at`` passes before an attempt.
        """
        if not message.body:
            raise InvalidMessage("The message body is empty.")
        segments, encoding = segment_info(message.body)
        body = self.payload(message, template)
        sent = _Sent(message.to, message.body, datetime.now(UTC))

        async def attempt(number: int) -> SendResult:
            if message.expires_at is not None and datetime.now(UTC) >= message.expires_at:
                raise Expired("The message expired before it could be handed to MSG91; nothing was sent.")
            document, status = await self._exchange(body, sent)
            request_id = document.get("message") if document is not None else None
            if document is None or document.get("type") != "success" or not isinstance(request_id, str):
                raise _unknown(sent, f"MSG91 answered HTTP {status} without a request id")
            return SendResult(
                message_id=request_id,
                status="accepted",
                to=message.to,
                segments=segments,
                encoding=encoding,
                attempts=number,
                provider="msg91",
                date_created=sent.sent_after,
            )

        return await self._retry.run(attempt)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def find_sent(
        self, to: str, body: str, sent_after: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        """MSG91 documents no look-up of a message by our id or by its text: never confirmable."""
        raise ReconciliationUnavailable("MSG91 offers no look-up of a message by its request id or its text.")

    async def _exchange(self, body: dict[str, Any], sent: _Sent) -> tuple[dict[str, Any] | None, int]:
        """One POST; the JSON document of a 2xx that is not ``type: error``, anything else raised."""
        try:
            response = await self._http.post_json(FLOW_PATH, body, self._headers)
        except httpx.TransportError as error:
            detail = type(error).__name__
            if nothing_was_sent(error):
                raise ProviderUnavailable(f"Could not reach MSG91 ({detail}).") from error
            raise _unknown(sent, f"The connection failed after the request was sent ({detail})") from error
        status, document = response.status_code, _json(response)
        if status == 429:
            raise RateLimited("MSG91 answered 429: too many requests.", http_status=429, retry_after=_after(response))
        if status >= 500:
            raise _unknown(sent, f"MSG91 answered HTTP {status}", status=status)
        if document is not None and document.get("type") == "error":
            self._refuse(document, status)
        if status in (401, 403):
            raise AuthenticationError(f"MSG91 refused the platform's auth key (HTTP {status}).", http_status=status)
        if not response.is_success:
            raise MessageRejected(f"MSG91 refused the request (HTTP {status}).", http_status=status)
        return document, status

    def _refuse(self, document: Mapping[str, Any], status: int) -> NoReturn:
        code = str(document.get("code") or "").strip()
        numeric = int(code) if code.isdigit() else None
        said = self._scrub(str(document.get("message") or "no reason given"))[:200]
        kind: type[ProviderError]
        if code in AUTH_CODES:
            kind, what = AuthenticationError, "MSG91 refused the platform's auth key"
        elif code in ACCOUNT_CODES:
            kind, what = AccountBlocked, "MSG91 refused the platform's account"
        else:
            kind, what = MessageRejected, "MSG91 refused the message"
        raise kind(f"{what}: {said} (code {code or 'none'}).", provider_code=numeric, http_status=status)

    def _scrub(self, text: str) -> str:
        """MSG91's own words, without the auth key should it ever quote it."""
        return text.replace(self._account.authkey.get_secret_value(), "[authkey]")


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _unknown(sent: _Sent, what: str, *, status: int | None = None) -> UnknownOutcome:
    return UnknownOutcome(
        f"{what}; MSG91 may have accepted the message.",
        to=sent.to,
        body=sent.body,
        sent_after=sent.sent_after,
        http_status=status,
    )
