"""Webhooks to tenants: what is POSTed for each outcome and status record, how it is signed, and what is kept
until it is delivered. The delivery itself is :mod:`smsdispatch.core.webhook_delivery`.

The format is docs/contract.md's (the Standard Webhooks specification): the body is
``{"type": "sms.dispatched"|"sms.failed"|"sms.status", "timestamp": RFC 3339, "data": <the record>}`` and the
headers are ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,<base64
HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the decoded ``whsec_`` secret), signed by the
``standardwebhooks`` package itself, so what a tenant verifies with it is exactly what we sign.

Guarantees, and their limits:

* **One id per record, on every attempt.** :func:`webhook_id_for` derives the id from what identifies the
  record, never from the time or a counter: every retry of a delivery, and a fresh delivery of the same record
  (a Kafka redelivery, a worker restart) carries the same ``webhook-id``, which is what a tenant deduplicates
  on. The id is ``msg_`` + the lowercase base32 of the first 20 bytes (160 bits) of the SHA-256 of
  ``topic, tenant_id, request_id | provider_message_id, status | error code`` joined by ``\\x1f``: for
  ``sms.dispatched`` (tenant, request_id, status), for ``sms.failed`` (tenant, request_id, error code), for
  ``sms.status`` (tenant, provider_message_id, status). So the same status reported twice for one message (a
  callback and a poll) is one webhook to the tenant. An ``sms.failed`` without a request_id is identified by
  its whole JSON instead.
* **The same body on every attempt.** The body is built once, when the delivery is enqueued, and kept in the
  :class:`PendingDelivery`; its ``timestamp`` is the record's own time (dispatched_at, failed_at,
  received_at) and ``data`` is the record's JSON exactly as published. Only ``webhook-timestamp`` and the
  signature are made at each attempt, as the specification requires (verifiers refuse timestamps more than
  five minutes old), with the tenant's secret as it is then.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from standardwebhooks import Webhook

from smsdispatch.contract import ErrorInfo, SmsDispatched, SmsFailed, SmsStatus, TenantRecord, topics
from smsdispatch.core.tenants import ReadyTenant

WebhookRecord = SmsDispatched | SmsFailed | SmsStatus
WebhookType = Literal["sms.dispatched", "sms.failed", "sms.status"]


class PendingDelivery(BaseModel):
    """One webhook still to be delivered; stored as JSON under :func:`delivery_key`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    webhook_id: str
    tenant_id: str
    type: WebhookType
    #: The body to POST, exactly (the same bytes on every attempt).
    payload: str
    first_at: datetime
    #: Attempts made so far.
    attempts: int = 0
    next_at: datetime
    last_error: str | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def delivery_key(tenant_id: str, webhook_id: str) -> bytes:
    return f"{tenant_id}\x1f{webhook_id}".encode()


def webhook_type(record: WebhookRecord) -> WebhookType:
    if isinstance(record, SmsDispatched):
        return "sms.dispatched"
    if isinstance(record, SmsFailed):
        return "sms.failed"
    return "sms.status"


def webhook_id_for(record: WebhookRecord) -> str:
    """The record's ``webhook-id``: the same for the same record, however often it is delivered (see above)."""
    if isinstance(record, SmsDispatched):
        parts = [topics.DISPATCHED, record.tenant_id, record.request_id, record.status]
    elif isinstance(record, SmsFailed):
        what = record.request_id if record.request_id is not None else record.model_dump_json()
        parts = [topics.FAILED, record.tenant_id or "", what, record.error.code.value]
    else:
        parts = [topics.STATUS, record.tenant_id, record.provider_message_id, record.status]
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:20]
    return "msg_" + base64.b32encode(digest).decode().lower()


def event_time(record: WebhookRecord) -> datetime:
    if isinstance(record, SmsDispatched):
        return record.dispatched_at
    if isinstance(record, SmsFailed):
        return record.failed_at
    return record.received_at


def webhook_body(record: WebhookRecord) -> bytes:
    """``{"type", "timestamp", "data"}``, with ``data`` the record's JSON byte for byte as on its topic."""
    head = {"type": webhook_type(record), "timestamp": rfc3339(event_time(record))}
    opening = json.dumps(head, separators=(",", ":"))[:-1]
    return f'{opening},"data":{record.model_dump_json()}}}'.encode()


def signed_headers(webhook_id: str, body: bytes | str, secret: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent at ``at``, signed with ``secret`` (``whsec_…``).

    Raises ``ValueError`` (or the package's ``EmptyWebhookSecretError``) for a secret that is not base64."""
    moment = at.astimezone(UTC)  # the package reads the datetime's fields as UTC whatever its zone
    text = body.decode() if isinstance(body, bytes) else body
    signature = Webhook(secret).sign(webhook_id, moment, text)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def webhook_message(record: WebhookRecord, webhook_id: str, secret: str, at: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt to deliver ``record``."""
    body = webhook_body(record)
    return body, signed_headers(webhook_id, body, secret, at)


def webhook_url_of(tenant: ReadyTenant | TenantRecord | ErrorInfo | None) -> str | None:
    if isinstance(tenant, ReadyTenant):
        return tenant.record.webhook_url
    if isinstance(tenant, TenantRecord):
        return tenant.webhook_url
    return None


def delivery_for(
    record: WebhookRecord, tenant: ReadyTenant | TenantRecord | ErrorInfo | None, now: datetime
) -> tuple[bytes, PendingDelivery] | None:
    """The delivery to enqueue for ``record``, due at once; None when its tenant has no webhook URL (or the record
    names no tenant). Store it only if its key is absent: an existing entry is the same webhook, with its
    attempts and first_at, and must not be reset by a redelivered record."""
    tenant_id = record.tenant_id
    if not tenant_id or webhook_url_of(tenant) is None:
        return None
    webhook_id = webhook_id_for(record)
    pending = PendingDelivery(
        webhook_id=webhook_id,
        tenant_id=tenant_id,
        type=webhook_type(record),
        payload=webhook_body(record).decode(),
        first_at=now,
        next_at=now,
    )
    return delivery_key(tenant_id, webhook_id), pending


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
