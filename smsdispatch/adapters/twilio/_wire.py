"""Reading Twilio's answers: JSON documents, error bodies, RFC 2822 dates and ``Retry-After``.

Twilio's error body is ``{"code": 21211, "message": "...", "more_info": "...", "status": 400}``; a message
resource reports a failure in ``error_code`` / ``error_message``. Both are read defensively: a proxy in front
of Twilio may answer with HTML, and a field can be missing or of an unexpected type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpx

_MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True, slots=True)
class Fault:
    """Twilio's numeric error code (when it gave one) and its human sentence."""

    code: int | None
    message: str


def read_json(response: httpx.Response) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is not one."""
    try:
        # json.loads finds UTF-8/16/32 in the bytes itself; response.json() would first sniff a charset.
        document = json.loads(response.content)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _sentence(value: object, fallback: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return (text or fallback)[:_MAX_MESSAGE_CHARS]


def fault_of(response: httpx.Response) -> Fault:
    """What an error response says, falling back to the HTTP status line when the body is not Twilio's."""
    fallback = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    document = read_json(response) or {}
    return Fault(_as_int(document.get("code")), _sentence(document.get("message"), fallback))


def embedded_fault(document: dict[str, Any]) -> Fault | None:
    """The error a 2xx document carries in ``code`` or ``error_code``, if either is set."""
    for code_key, message_key in (("code", "message"), ("error_code", "error_message")):
        if document.get(code_key) is not None:
            code = _as_int(document[code_key])
            return Fault(code, _sentence(document.get(message_key), f"Twilio reported error {code}"))
    return None


def parse_date(value: object) -> datetime | None:
    """An RFC 2822 date such as ``Thu, 24 Aug 2023 05:01:45 +0000`` as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    return _parse_rfc2822(value)


@lru_cache(maxsize=64)
def _parse_rfc2822(value: str) -> datetime | None:
    # Cached: every create answered within the same second carries the same date_created.
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds from now (it may be a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = parse_date(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
