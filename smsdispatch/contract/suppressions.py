"""Opt-outs: the record on the compacted ``sms.suppressions`` topic, its key, and building a change to publish.

One record per (tenant, number) that opted out, keyed ``"{tenant_id}/{number}"``; opting back in publishes a
tombstone (null value) for the same key, so compaction keeps exactly the current list. The key cannot be
ambiguous: a tenant_id never contains ``/`` (``[A-Za-z0-9_.-]``) and a number is E.164 (``+`` and digits).
The key alone says who opted out; the value says how and when, for people and audits.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from smsdispatch.contract._fields import PhoneNumber, TenantId, Timestamp, utcnow
from smsdispatch.contract.messages import WireModel

KEY_SEPARATOR = "/"
# Shapes only (no phonenumbers lookup): a follower reads every key of the topic at start, so this stays cheap.
_KEY_SHAPE = re.compile(r"^([A-Za-z0-9_.-]{1,64})/(\+[1-9][0-9]{1,14})\Z")


class SuppressionSource(StrEnum):
    """Why the number is on the list."""

    #: Twilio refused a message with 21610 (the recipient had replied STOP to that sender).
    PROVIDER_21610 = "provider_21610"
    #: An inbound message Twilio marked ``OptOutType=STOP`` reached the tenant's inbound webhook.
    INBOUND_STOP = "inbound_stop"
    #: An operator ran ``smsdispatch suppressions add``.
    OPERATOR = "operator"


class SuppressionRecord(WireModel):
    """The value on ``sms.suppressions`` (key ``"{tenant_id}/{number}"``; a null value = opted back in)."""

    tenant_id: TenantId
    number: PhoneNumber
    source: SuppressionSource
    #: When the opt-out was recorded.
    at: Timestamp = Field(default_factory=utcnow)


def suppression_key(tenant_id: str, number: str) -> bytes:
    """The record key of (tenant, number): UTF-8 ``"{tenant_id}/{number}"``."""
    return f"{tenant_id}{KEY_SEPARATOR}{number}".encode()


def parse_suppression_key(key: bytes | None) -> tuple[str, str] | None:
    """``(tenant_id, number)`` of a key, or None when it is not one this module writes."""
    if key is None:
        return None
    try:
        found = _KEY_SHAPE.match(key.decode())
    except UnicodeDecodeError:
        return None
    return (found.group(1), found.group(2)) if found else None


def suppression_change(
    tenant_id: str,
    number: str,
    opted_out: bool,
    source: SuppressionSource = SuppressionSource.OPERATOR,
    at: datetime | None = None,
) -> tuple[bytes, bytes | None]:
    """The ``(key, value)`` to publish on ``sms.suppressions`` (acks=all): the record when ``opted_out``, else
    the tombstone that opts the number back in. Validates both ids (``pydantic.ValidationError``) either way,
    so a tombstone can never be written for a key no record could have had."""
    record = SuppressionRecord(tenant_id=tenant_id, number=number, source=source, at=at or utcnow())
    value = record.to_bytes() if opted_out else None
    return suppression_key(record.tenant_id, record.number), value
