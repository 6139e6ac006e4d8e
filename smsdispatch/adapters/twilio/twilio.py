"""Twilio Programmable Messaging over httpx: send, verify credentials, and confirm an unknown outcome.

Built on the REST API directly rather than the Twilio SDK, whose async client retries a create on every 5xx
(a possible duplicate SMS) and never on 429 (the one safe case). Here a create is retried only when Twilio
provably processed nothing (see :mod:`smsdispatch.adapters.sms.retry` and :mod:`.errors`); every other failure
after the request went out is an :class:`UnknownOutcome` that :meth:`TwilioProvider.find_sent` can settle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from smsdispatch.adapters.sms import nothing_was_sent
from smsdispatch.adapters.sms.errors import (
    AuthenticationError,
    Expired,
    MessageRejected,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ReconciliationUnavailable,
    UnknownOutcome,
)
from smsdispatch.adapters.sms.models import AccountInfo, OutgoingSms, SendResult
from smsdispatch.adapters.sms.retry import RetryPolicy
from smsdispatch.adapters.twilio._wire import (
    _as_int,
    embedded_fault,
    fault_of,
    parse_date,
    read_json,
    retry_after_seconds,
)
from smsdispatch.adapters.twilio.http_client import TwilioHttp, basic_authorization
from smsdispatch.adapters.twilio.segments import check_body, segment_info
from smsdispatch.contract import TenantConfig

API_VERSION = "2010-04-01"
TEST_CREDENTIALS_CODE = 20008
DEFAULT_CLOCK_SKEW = timedelta(seconds=60)
DEFAULT_MAX_PAGES = 5
_PAGE_SIZE = "50"
#: Twilio's bounds for ValidityPeriod, in seconds.
MIN_VALIDITY, MAX_VALIDITY = 1, 36_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Create:
    """The create in flight, so a lost answer can be reported with what reconciliation needs."""

    to: str
    body: str
    sent_after: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class MessageStatusInfo:
    """A message as ``GET …/Messages/{Sid}.json`` reports it now: Twilio's status, and its asynchronous error
    code (30xxx on ``undelivered`` / ``failed``) or None. The REST resource carries no ``RawDlrDoneDate``: that
    arrives only in status callbacks."""

    sid: str
    status: str
    error_code: int | None = None
    date_updated: datetime | None = None
    date_sent: datetime | None = None


class TwilioProvider:
    """One tenant's Twilio account. Cheap to build: all providers share the process's :class:`TwilioHttp`."""

    def __init__(
        self,
        config: TenantConfig,
        http: TwilioHttp,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._config = config
        self._http = http
        self._retry = retry if retry is not None else RetryPolicy()
        self._authorization = basic_authorization(*config.basic_auth)
        self._account_path = f"/{API_VERSION}/Accounts/{config.account_sid}"
        self._messages_path = f"{self._account_path}/Messages.json"

    @property
    def account_sid(self) -> str:
        return self._config.account_sid

    def __repr__(self) -> str:
        return f"TwilioProvider(account_sid={self.account_sid!r}, from_number={self._config.from_number!r})"

    async def send(self, message: OutgoingSms) -> SendResult:
        """Create the message; retried only on 429 and on connections that never carried the request.

        Raises :class:`InvalidMessage` (before any HTTP call), :class:`MessageRejected`,
        :class:`AuthenticationError`, :class:`RateLimited` / :class:`ProviderUnavailable` once retries run
        out, :class:`UnknownOutcome`, or :class:`Expired` when ``expires_at`` passes before an attempt (every
        attempt before it was one Twilio processed nothing of, or it would not have been retried).
        """
        check_body(message.body)
        segments, encoding = segment_info(message.body)
        form = self._create_form(message)
        create = _Create(message.to, message.body, datetime.now(UTC))

        async def attempt(number: int) -> SendResult:
            if message.expires_at is not None:
                form["ValidityPeriod"] = str(validity_period(message.expires_at, datetime.now(UTC)))
            response = await self._exchange("POST", self._messages_path, data=form, create=create)
            document = read_json(response)
            fault = embedded_fault(document) if document is not None else None
            if fault is not None:
                raise MessageRejected(
                    f"Twilio refused the message: {fault.message}",
                    provider_code=fault.code,
                    http_status=response.status_code,
                )
            if document is None or not isinstance(document.get("sid"), str):
                raise _unknown(create, f"Twilio answered HTTP {response.status_code} without a message SID")
            return SendResult(
                message_id=document["sid"],
                status=str(document.get("status") or "queued"),
                to=message.to,
                segments=segments,
                encoding=encoding,
                attempts=number,
                date_created=parse_date(document.get("date_created")),
            )

        return await self._retry.run(attempt)

    async def verify(self) -> AccountInfo:
        """Fetch the account to learn whether these credentials work, and for what kind of account.

        Raises :class:`AuthenticationError` for credentials Twilio refuses (401 / 20003).

        Only Main API keys may fetch ``/Accounts``; a Standard key gets 401 there. So when an API key is refused
        on the account, the message list (which every key may read) decides: readable means the key works,
        though the account's type and status stay unknown.
        """

        async def attempt(number: int) -> AccountInfo:
            try:
                response = await self._exchange("GET", f"{self._account_path}.json")
            except AuthenticationError as error:
                # 403/20008: Twilio authenticated these as test credentials, which may create and nothing else.
                if error.http_status == 403 and error.provider_code == TEST_CREDENTIALS_CODE:
                    return AccountInfo(verified=True, test_credentials=True)
                if self._config.api_key_sid is None:
                    raise
                await self._exchange("GET", self._messages_path, params={"PageSize": "1"})
                return AccountInfo(verified=True, reason="a Standard API key: the account itself cannot be read")
            return _account_info(read_json(response) or {})

        return await self._retry.run(attempt)

    async def find_sent(
        self,
        to: str,
        body: str,
        sent_after: datetime,
        *,
        exclude: Collection[str] = (),
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> SendResult | None:
        """Find the message an unknown outcome may have created: same To (and From), same body, created at
        or after ``sent_after - clock_skew``, and not one of the SIDs in ``exclude`` (messages already known to
        belong to other requests). Returns that message, or None when there is none.

        Raises :class:`ReconciliationUnavailable` when the credentials cannot list messages (test
        credentials), when more than ``max_pages`` pages would have to be read to be sure, or when several
        messages match: the same text to the same number twice, and no way to tell which one is this request's.
        """
        moment = sent_after if sent_after.tzinfo is not None else sent_after.replace(tzinfo=UTC)
        threshold = moment - clock_skew
        # No DateSent filter: a message Twilio accepted but has not sent yet has no date_sent, and it is exactly
        # the one an unknown outcome may have left behind. Twilio lists newest first (unsent ones on top), so
        # paging stops at the first page that is entirely older than the threshold.
        first_query = {"To": to, "PageSize": _PAGE_SIZE}
        if not self._config.uses_messaging_service:
            first_query["From"] = self._config.from_number
        path = self._messages_path
        query: dict[str, str] | None = first_query
        found: list[tuple[datetime, dict[str, Any]]] = []
        for _ in range(max_pages):
            page = await self._list_page(path, query)
            items = [item for item in page.get("messages") or [] if isinstance(item, dict)]
            dates = [parse_date(item.get("date_created")) for item in items]
            for item, created in zip(items, dates, strict=True):
                matches = created is not None and created >= threshold and item.get("body") == body
                if matches and item.get("sid") not in exclude:
                    found.append((created, item))  # type: ignore[arg-type]  # created is not None here
            all_older = bool(dates) and all(created is not None and created < threshold for created in dates)
            next_page = page.get("next_page_uri")
            if all_older or not isinstance(next_page, str) or not next_page:
                break
            path, query = next_page, None
        else:
            raise ReconciliationUnavailable(
                f"More than {max_pages} pages of messages to {to} since {threshold:%Y-%m-%d}; not confirmed."
            )
        if not found:
            return None
        if len(found) > 1:
            raise ReconciliationUnavailable(
                f"{len(found)} messages to {to} with this text since {threshold:%H:%M:%S}: cannot tell which is ours."
            )
        created, item = found[0]
        segments, encoding = segment_info(body)
        return SendResult(
            message_id=str(item.get("sid")),
            status=str(item.get("status")),
            to=to,
            segments=segments,
            encoding=encoding,
            attempts=1,
            date_created=created,
        )

    async def fetch_message(self, sid: str) -> MessageStatusInfo:
        """Fetch one message's current status (an idempotent GET, retried per the :class:`RetryPolicy`).

        Raises :class:`ReconciliationUnavailable` for test credentials (Twilio answers 403 / 20008: they may
        create messages and read nothing), :class:`MessageRejected` with ``http_status`` 404 when this account
        has no such message, :class:`AuthenticationError` for refused credentials, and :class:`RateLimited` /
        :class:`ProviderUnavailable` once retries run out.
        """
        path = f"{self._account_path}/Messages/{quote(sid, safe='')}.json"

        async def attempt(number: int) -> MessageStatusInfo:
            try:
                response = await self._exchange("GET", path)
            except AuthenticationError as error:
                if error.http_status == 403 and error.provider_code == TEST_CREDENTIALS_CODE:
                    raise ReconciliationUnavailable(
                        "Test credentials cannot fetch messages (20008), so the status cannot be polled.",
                        provider_code=error.provider_code,
                        http_status=error.http_status,
                    ) from error
                raise
            except MessageRejected as error:
                if error.http_status == 404:
                    raise MessageRejected(
                        f"Twilio has no message {sid} in account {self.account_sid}.",
                        provider_code=error.provider_code,
                        http_status=404,
                    ) from error
                raise
            document = read_json(response) or {}
            status = document.get("status")
            if not isinstance(status, str) or not status:
                raise ProviderUnavailable(f"Twilio answered HTTP {response.status_code} without a message status")
            found = document.get("sid")
            return MessageStatusInfo(
                sid=found if isinstance(found, str) and found else sid,
                status=status,
                error_code=_as_int(document.get("error_code")),
                date_updated=parse_date(document.get("date_updated")),
                date_sent=parse_date(document.get("date_sent")),
            )

        return await self._retry.run(attempt)

    def _create_form(self, message: OutgoingSms) -> dict[str, str]:
        form = {"To": message.to, "Body": message.body}
        sender_field = "MessagingServiceSid" if self._config.uses_messaging_service else "From"
        form[sender_field] = self._config.from_number
        # One path sets the callback: the message carries it (the sender pool builds it per request).
        if message.status_callback:
            form["StatusCallback"] = message.status_callback
        return form

    async def _list_page(self, path: str, query: dict[str, str] | None) -> dict[str, Any]:
        async def attempt(number: int) -> dict[str, Any]:
            try:
                response = await self._exchange("GET", path, params=query)
            except AuthenticationError as error:
                if error.http_status == 403 and error.provider_code == TEST_CREDENTIALS_CODE:
                    raise ReconciliationUnavailable(
                        "Test credentials cannot list messages (20008), so the outcome cannot be confirmed.",
                        provider_code=error.provider_code,
                        http_status=error.http_status,
                    ) from error
                raise
            page = read_json(response)
            if page is None:
                raise ProviderUnavailable(f"Twilio answered HTTP {response.status_code} with no message list")
            return page

        return await self._retry.run(attempt)

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        create: _Create | None = None,
    ) -> httpx.Response:
        """One HTTP request; a 2xx response is returned, anything else raised as a :class:`ProviderError`.

        ``create`` is set for the one non-idempotent call. For the others (GETs) a lost answer is merely
        :class:`ProviderUnavailable`, since asking again cannot send anything.
        """
        try:
            response = await self._http.request(
                method, path, authorization=self._authorization, data=data, params=params
            )
        except httpx.TransportError as error:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if nothing_was_sent(error):
                raise ProviderUnavailable(f"Could not reach Twilio ({detail}).") from error
            if create is not None:
                raise _unknown(create, f"The connection failed after the create was sent ({detail})") from error
            raise ProviderUnavailable(f"The connection to Twilio failed ({detail}).") from error
        if response.is_success:
            return response
        raise _status_error(response, create)


def validity_period(expires_at: datetime, now: datetime) -> int:
    """Twilio's ``ValidityPeriod`` for a message that goes stale at ``expires_at``: the whole seconds left (rounded
    down, so Twilio never holds it past the moment), within Twilio's 1 to 36000. Raises :class:`Expired` once past."""
    left = (expires_at - now).total_seconds()
    if left <= 0:
        raise Expired(f"The message expired {-left:.1f}s before it could be handed to Twilio; nothing was sent.")
    return min(MAX_VALIDITY, max(MIN_VALIDITY, int(left)))


def _unknown(create: _Create, what: str, *, code: int | None = None, status: int | None = None) -> UnknownOutcome:
    return UnknownOutcome(
        f"{what}; Twilio may have accepted the message.",
        to=create.to,
        body=create.body,
        sent_after=create.sent_after,
        provider_code=code,
        http_status=status,
    )


def _status_error(response: httpx.Response, create: _Create | None) -> ProviderError:
    status = response.status_code
    fault = fault_of(response)
    code_text = f" ({fault.code})" if fault.code is not None else ""
    if status == 429:
        return RateLimited(
            f"Twilio is rate limiting this account: {fault.message}{code_text}",
            provider_code=fault.code,
            retry_after=retry_after_seconds(response),
        )
    if status in (401, 403):
        return AuthenticationError(
            f"Twilio refused the credentials: {fault.message}{code_text}",
            provider_code=fault.code,
            http_status=status,
        )
    if 400 <= status < 500:
        return MessageRejected(
            f"Twilio refused the request: {fault.message}{code_text}",
            provider_code=fault.code,
            http_status=status,
        )
    if create is not None:
        return _unknown(create, f"Twilio answered HTTP {status}{code_text}", code=fault.code, status=status)
    return ProviderUnavailable(
        f"Twilio answered HTTP {status}: {fault.message}{code_text}",
        provider_code=fault.code,
        http_status=status,
    )


def _account_info(document: dict[str, Any]) -> AccountInfo:
    status = document.get("status") if isinstance(document.get("status"), str) else None
    account_type = document.get("type") if document.get("type") in ("Trial", "Full") else None
    name = document.get("friendly_name") if isinstance(document.get("friendly_name"), str) else None
    if status == "active":
        return AccountInfo(verified=True, account_type=account_type, status=status, friendly_name=name)
    reason = f"The Twilio account is {status}." if status else "Twilio did not report the account's status."
    return AccountInfo(verified=False, account_type=account_type, status=status, friendly_name=name, reason=reason)
