"""Field types shared by every value on the wire: identifiers, phone numbers, bodies, timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, Field, StringConstraints

MAX_BODY_CHARS = 1600
RAW_EXCERPT_BYTES = 4096

_E164_SHAPE = re.compile(r"^\+[1-9][0-9]{1,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")


def check_e164(value: str) -> str:
    """Accept a number written in E.164 whose length is possible for its country.

    We check *possible*, not *valid*: Twilio's magic test numbers (+1500555000x) and numbers newer than the
    phonenumbers release must reach Twilio, which is the authority on whether a number is routable (21211).
    """
    if not _E164_SHAPE.match(value):
        raise ValueError("must be an E.164 phone number such as +14155552671")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("is not a possible phone number for its country code")
    return value


def check_sender(value: str) -> str:
    """Accept what Twilio accepts as a sender: E.164, an alphanumeric sender ID, a short code or an MG SID."""
    if MESSAGING_SERVICE_SID.match(value) or _SHORT_CODE.match(value) or _ALPHANUMERIC_SENDER.match(value):
        return value
    return check_e164(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_aware(value: datetime) -> datetime:
    """Timestamps are RFC 3339 with an offset; a naive one is read as UTC rather than guessed at."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


TenantId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
PhoneNumber = Annotated[str, AfterValidator(check_e164)]
Sender = Annotated[str, AfterValidator(check_sender)]
Body = Annotated[str, Field(min_length=1, max_length=MAX_BODY_CHARS)]
Timestamp = Annotated[datetime, AfterValidator(check_aware)]
Metadata = dict[str, str]
