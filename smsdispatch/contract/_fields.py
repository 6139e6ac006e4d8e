"""Field types shared by every value on the wire: identifiers, phone numbers, bodies, timestamps."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

MAX_BODY_CHARS = 1600
MAX_METADATA_CHARS = 16_384
RAW_EXCERPT_BYTES = 4096

# The patterns end in \Z, not $: Python's $ also matches before a trailing newline, which would let
# "+14155552671\n" through. E164_PATTERN is the same shape in the ECMA-262 dialect JSON Schema uses.
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
_E164_SHAPE = re.compile(r"^\+[1-9][0-9]{1,14}\Z")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}\Z")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}\Z")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}\Z")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}\Z")
API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}\Z")
# RFC 3339 date-time; the offset may be left out (read as UTC, see check_aware). Without this check pydantic
# would also take "1700000000" (Unix seconds in a string) as a timestamp.
_RFC3339_SHAPE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?\Z"
)


def check_e164(value: str) -> str:
    """Accept a number written in E.164 whose length is possible for its country.

    We check *possible*, not *valid*: Twilio's magic test numbers (+1500555000x) and numbers newer than the
    phonenumbers release must reach Twilio, which is the authority on whether a number is routable (21211).
    """
    problem = _e164_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


@functools.lru_cache(maxsize=65_536)
def _e164_problem(value: str) -> str | None:
    """Why ``value`` is not an E.164 number (None: it is). Cached: parsing costs about 20 µs a number, and
    recipients repeat (OTP retries, campaigns); 65,536 entries hold a few MB."""
    if not _E164_SHAPE.match(value):
        return "must be an E.164 phone number such as +14155552671"
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        return f"is not a phone number: {exc}"
    if not phonenumbers.is_possible_number(parsed):
        return "is not a possible phone number for its country code"
    return None


def check_sender(value: str) -> str:
    """Accept what Twilio accepts as a sender: E.164, an alphanumeric sender ID, a short code or an MG SID."""
    if MESSAGING_SERVICE_SID.match(value) or _SHORT_CODE.match(value) or _ALPHANUMERIC_SENDER.match(value):
        return value
    return check_e164(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_rfc3339(value: object) -> object:
    """Turn an RFC 3339 string into a datetime; anything else is left for the strict datetime check to refuse.

    We parse here rather than let pydantic do it: its parser also takes Unix seconds written as a string, and
    a string returned by a before-validator would meet pydantic's *strict Python* datetime check, which
    refuses every string.
    """
    if not isinstance(value, str):
        return value
    if _RFC3339_SHAPE.match(value):
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            pass  # right shape, impossible date such as February 30: same message as a wrong shape
    raise ValueError("must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z")


def absent_if_null(value: object) -> object:
    """An optional object sent as JSON null means "not given", as it does for the other optional fields."""
    return {} if value is None else value


def check_aware(value: datetime) -> datetime:
    """Timestamps are RFC 3339 with an offset; a naive one is read as UTC rather than guessed at."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


TenantId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def no_nul(value: str) -> str:
    """NUL cannot be stored in PostgreSQL text or JSON, so it would stall the dispatch log: refuse it here."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def check_metadata(value: dict[str, str]) -> dict[str, str]:
    """Metadata rides on every outcome and ledger entry: bounded, so no record can outgrow Kafka's limits."""
    if sum(len(key) + len(item) for key, item in value.items()) > MAX_METADATA_CHARS:
        raise ValueError(f"must hold at most {MAX_METADATA_CHARS} characters of keys and values in all")
    for key, item in value.items():
        no_nul(key)
        no_nul(item)
    return value


RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(no_nul)]
# json_schema_extra tells producers in other languages, via the JSON Schema, what the AfterValidator checks.
PhoneNumber = Annotated[
    str,
    AfterValidator(check_e164),
    Field(
        json_schema_extra={
            "pattern": E164_PATTERN,
            "description": "E.164 phone number, with a length that is possible for its country code.",
            "examples": ["+14155552671"],
        }
    ),
]
Sender = Annotated[str, AfterValidator(check_sender)]
Body = Annotated[str, Field(min_length=1, max_length=MAX_BODY_CHARS), AfterValidator(no_nul)]
Timestamp = Annotated[datetime, BeforeValidator(parse_rfc3339), AfterValidator(check_aware)]
Metadata = Annotated[dict[str, str], BeforeValidator(absent_if_null), AfterValidator(check_metadata)]
