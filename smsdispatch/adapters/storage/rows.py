"""What each outcome says about its row, before any SQL: status ranks, row keys and column values.

A row's key is (tenant_id, request_id): request_id is unique only per tenant (the public contract), and
keying by tenant is what keeps one tenant's outcomes, including a status callback it signed naming another
tenant's request_id and SID, away from another tenant's rows (see ``upserts.py``). tenant_id is never NULL: an
outcome with no tenant (``SmsFailed`` of an unreadable record) is stored under :data:`NO_TENANT`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from smsdispatch.contract import SmsDispatched, SmsFailed, SmsStatus

LoggedOutcome = SmsDispatched | SmsFailed | SmsStatus

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled"})
# Twilio's lifecycle: (accepted | scheduled →) queued → sending → sent → delivered | undelivered; failed or
# canceled can end it earlier. A status may only replace one of strictly lower rank.
STATUS_RANK: dict[str, int] = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    **dict.fromkeys(FINAL_STATUSES, 5),
}
UNREADABLE_PREFIX = "unreadable:"
# The tenant_id of a row or parked receipt whose outcome names no tenant. Part of the primary key, so it
# must be a value (NULL would never be equal to itself, and two NULL-tenant copies would be two rows).
NO_TENANT = ""


def status_rank(status: str) -> int:
    """The rank deciding whether ``status`` may replace another (0 for statuses we do not know)."""
    return STATUS_RANK.get(status, 0)


def unreadable_request_id(failed: SmsFailed) -> str:
    """The row key for a failure whose request_id is unknown: the same for the same unreadable input."""
    if failed.raw is not None:
        material = failed.raw
    else:  # no raw excerpt: use everything that describes the input, but not when we happened to see it
        material = json.dumps(failed.model_dump(mode="json", exclude={"failed_at"}), sort_keys=True)
    return UNREADABLE_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def row_tenant_id(tenant_id: str | None) -> str:
    """The tenant_id column value for an outcome's tenant: :data:`NO_TENANT` when it names none."""
    return NO_TENANT if tenant_id is None else tenant_id


def is_keyed(outcome: LoggedOutcome) -> bool:
    """Whether the outcome names its row (request_id, or a synthetic key); False for SID-only receipts."""
    return not (isinstance(outcome, SmsStatus) and outcome.request_id is None)


def row_values(outcome: LoggedOutcome) -> dict[str, Any]:
    """The dispatch-log columns a keyed outcome sets; columns it knows nothing about are left out.

    Always includes the row key, ``tenant_id`` and ``request_id``.
    """
    if isinstance(outcome, SmsDispatched):
        return {
            "request_id": outcome.request_id,
            "tenant_id": outcome.tenant_id,
            "provider": outcome.provider,
            "provider_message_id": outcome.provider_message_id,
            "to_number": outcome.to,
            "status": outcome.status,
            "segments": outcome.segments,
            "attempts": outcome.attempts,
            "resend_of": outcome.resend_of,
            "requested_at": outcome.requested_at,
            "updated_at": outcome.dispatched_at,
            "encoding": outcome.encoding,
            "dispatched_at": outcome.dispatched_at,
            "metadata": dict(outcome.metadata),
        }
    if isinstance(outcome, SmsFailed):
        return {
            "request_id": outcome.request_id or unreadable_request_id(outcome),
            "tenant_id": row_tenant_id(outcome.tenant_id),
            "provider": outcome.provider,
            "to_number": outcome.to,
            "status": "failed",
            "error_code": outcome.error.code.value,
            "error_message": outcome.error.message,
            "provider_code": outcome.error.provider_code,
            "attempts": outcome.attempts,
            "resend_of": outcome.resend_of,
            "requested_at": outcome.requested_at,
            "updated_at": outcome.failed_at,
            "metadata": dict(outcome.metadata),
        }
    if outcome.request_id is None:
        raise ValueError("a receipt without a request_id has no row of its own; it is parked by SID")
    return {
        "request_id": outcome.request_id,
        "tenant_id": outcome.tenant_id,
        "provider_message_id": outcome.provider_message_id,
        "status": outcome.status,
        "provider_code": outcome.provider_code,
        "updated_at": outcome.received_at,
    }


def parked_receipt_values(receipt: SmsStatus) -> dict[str, Any]:
    """The pending-receipt columns of a receipt that names only its SID (keyed by tenant, SID and status)."""
    return {
        "provider_message_id": receipt.provider_message_id,
        "status": receipt.status,
        "tenant_id": row_tenant_id(receipt.tenant_id),
        "provider_code": receipt.provider_code,
        "received_at": receipt.received_at,
    }
