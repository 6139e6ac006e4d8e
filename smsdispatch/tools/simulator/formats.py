"""The JSON Twilio answers with: message and account resources, the list envelope, RFC 2822 dates.

Types follow docs/reference/twilio.md exactly: ``num_segments``, ``num_media`` and ``price`` are strings,
``error_code`` is an int or null, dates look like ``Thu, 24 Aug 2023 05:01:45 +0000``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from smsdispatch.tools.simulator.config import SimAccount
from smsdispatch.tools.simulator.errors import ERROR_MESSAGES
from smsdispatch.tools.simulator.store import Message

API_VERSION = "2010-04-01"
PRICE_PER_SEGMENT = 0.0079

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_rfc2822_cache: dict[int, str] = {}


def rfc2822(moment: float) -> str:
    """``Thu, 24 Aug 2023 05:01:45 +0000`` in UTC, without depending on the process locale."""
    second = int(moment)
    cached = _rfc2822_cache.get(second)
    if cached is not None:
        return cached
    t = time.gmtime(second)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    if len(_rfc2822_cache) > 4096:  # a run spans many seconds; keep only a recent window
        _rfc2822_cache.clear()
    _rfc2822_cache[second] = text
    return text


def raw_dlr_done_date(moment: float) -> str:
    """Twilio's ``RawDlrDoneDate``: YYMMDDhhmm, UTC, no zone."""
    return time.strftime("%y%m%d%H%M", time.gmtime(moment))


def message_uri(account_sid: str, sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def message_resource(message: Message, now_mono: float, *, as_created: bool = False) -> dict[str, Any]:
    """The message as Twilio's Message resource, in the state it has reached at ``now_mono``.

    ``as_created`` renders the initial state whatever the time: a create's answer always carries the initial
    status, even when the configured status delay is zero.
    """
    index = 0 if as_created else message.current_step(now_mono)
    at, status = message.steps[index]
    is_final = index == len(message.steps) - 1
    error_code = message.error_code if is_final else None
    sent = None if as_created else message.sent_wall(now_mono)
    accepted = status == "accepted"
    uri = message_uri(message.account_sid, message.sid)
    base = uri[: -len(".json")]
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created_wall),
        "date_sent": rfc2822(sent) if sent is not None else None,
        "date_updated": rfc2822(message.wall_time(at)),
        "direction": "outbound-api",
        "error_code": error_code,
        "error_message": ERROR_MESSAGES.get(error_code) if error_code is not None else None,
        "from": None if accepted else message.from_number,
        "messaging_service_sid": message.service_sid,
        "num_media": "0",
        # A Messaging Service counts segments once it has picked a sender: "0" while accepted.
        "num_segments": "0" if accepted else str(message.segments),
        "price": f"-{PRICE_PER_SEGMENT * message.segments:.5f}" if sent is not None else None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": status,
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
        "to": message.to,
        "uri": uri,
    }


def rfc3339_micro(moment: float) -> str:
    """``2026-12-01T09:30:05.123456Z``: UTC with microseconds, for tests that need sub-second creation times."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sim_message_summary(message: Message, now_mono: float) -> dict[str, Any]:
    """One entry of ``GET /_sim/messages`` (docs/contract.md); ``from`` is the sender as the client gave it.

    The contract's keys come first; ``validity_period`` (seconds) and ``created_at`` (RFC 3339 with microseconds,
    where ``date_created`` has whole seconds only) are extras so tests can check what was sent and when.
    """
    return {
        "sid": message.sid,
        "account_sid": message.account_sid,
        "from": message.requested_sender,
        "to": message.to,
        "body": message.body,
        "status": message.status_at(now_mono),
        "date_created": rfc2822(message.created_wall),
        "validity_period": message.validity_period,
        "created_at": rfc3339_micro(message.created_wall),
    }


def account_resource(account: SimAccount, created_wall: float) -> dict[str, Any]:
    """Twilio's Account resource. ``auth_token`` is left out on purpose: the simulator never echoes a secret."""
    uri = f"/{API_VERSION}/Accounts/{account.sid}.json"
    base = uri[: -len(".json")]
    return {
        "date_created": rfc2822(created_wall),
        "date_updated": rfc2822(created_wall),
        "friendly_name": account.display_name,
        "owner_account_sid": account.sid,
        "sid": account.sid,
        "status": account.status,
        "subresource_uris": {
            "messages": f"{base}/Messages.json",
            "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
            "keys": f"{base}/Keys.json",
        },
        "type": account.account_type,
        "uri": uri,
    }


def page_envelope(
    *,
    path: str,
    filters: list[tuple[str, str]],
    records: list[dict[str, Any]],
    page: int,
    page_size: int,
    start: int,
    next_page_token: str | None,
) -> dict[str, Any]:
    """Twilio's list envelope. URIs carry the filters so the SDK can follow ``next_page_uri`` as is."""

    def page_uri(number: int, token: str | None = None) -> str:
        query = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if token is not None:
            query.append(("PageToken", token))
        return f"{path}?{urlencode(query)}"

    return {
        "messages": records,
        "end": start + len(records) - 1 if records else start,
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1, next_page_token) if next_page_token is not None else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": page_uri(page),
    }
