"""Webhook messages: the contract's body, Standard Webhooks signatures, and one webhook-id per record."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from smsdispatch.contract import (
    EncryptedConfig,
    ErrorCode,
    ErrorInfo,
    SmsDispatched,
    SmsFailed,
    SmsStatus,
    TenantRecord,
)
from smsdispatch.core.webhooks import (
    PendingDelivery,
    delivery_for,
    delivery_key,
    signed_headers,
    webhook_body,
    webhook_id_for,
    webhook_message,
)
from tests.accounts import dispatched_record

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
SID = "SM" + "ab" * 16


def dispatched(request_id: str = "r-1", status: str = "queued") -> SmsDispatched:
    return dispatched_record(request_id=request_id, sid=SID, status=status, at=T0, metadata={"order": "42"})


def failed(request_id: str | None = "r-1", code: ErrorCode = ErrorCode.PROVIDER_REJECTED) -> SmsFailed:
    return SmsFailed(
        request_id=request_id,
        tenant_id="acme",
        error=ErrorInfo(code=code, message="no", provider_code=21211),
        failed_at=T0,
    )


def status(value: str = "delivered", received: datetime = T0) -> SmsStatus:
    return SmsStatus(tenant_id="acme", request_id="r-1", provider_message_id=SID, status=value, received_at=received)


def record(webhook_url: str | None) -> TenantRecord:
    return TenantRecord(
        tenant_id="acme", config=EncryptedConfig(kid="k", ciphertext="x"), verified=True, webhook_url=webhook_url
    )


def test_the_signature_is_accepted_by_the_standardwebhooks_verifier() -> None:
    outcome = dispatched()
    body, headers = webhook_message(outcome, webhook_id_for(outcome), SECRET, datetime.now(UTC))

    verified = Webhook(SECRET).verify(body, headers)

    assert verified["data"]["request_id"] == "r-1"


def test_a_tampered_body_or_another_secret_is_refused_by_the_verifier() -> None:
    outcome = dispatched()
    body, headers = webhook_message(outcome, webhook_id_for(outcome), SECRET, datetime.now(UTC))
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"r-1", b"r-2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_the_headers_are_the_standard_ones_with_unix_seconds() -> None:
    at = datetime(2024, 5, 1, 14, 0, 30, 900_000, tzinfo=timezone(timedelta(hours=2)))

    headers = signed_headers("msg_x", b"{}", SECRET, at)

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize(
    ("outcome", "kind", "stamp"),
    [
        (dispatched(), "sms.dispatched", "2024-05-01T12:00:00Z"),
        (failed(), "sms.failed", "2024-05-01T12:00:00Z"),
        (status(received=T0 + timedelta(seconds=1.5)), "sms.status", "2024-05-01T12:00:01.500000Z"),
    ],
)
def test_the_body_is_type_timestamp_and_the_record_as_published(
    outcome: SmsDispatched | SmsFailed | SmsStatus, kind: str, stamp: str
) -> None:
    body = webhook_body(outcome)

    document = json.loads(body)
    assert document == {"type": kind, "timestamp": stamp, "data": json.loads(outcome.to_bytes())}
    assert body.endswith(b',"data":' + outcome.to_bytes() + b"}")


def test_the_webhook_id_is_the_same_for_the_same_record() -> None:
    assert webhook_id_for(dispatched()) == webhook_id_for(dispatched())
    # The same status of one message, from a callback and from a poll at another time: one webhook.
    assert webhook_id_for(status(received=T0)) == webhook_id_for(status(received=T0 + timedelta(hours=1)))
    assert webhook_id_for(failed()) == webhook_id_for(failed())


def test_the_webhook_id_differs_between_records() -> None:
    ids = {
        webhook_id_for(dispatched()),
        webhook_id_for(dispatched("r-2")),
        webhook_id_for(failed()),
        webhook_id_for(failed(code=ErrorCode.EXPIRED)),
        webhook_id_for(status("sent")),
        webhook_id_for(status("delivered")),
    }

    assert len(ids) == 6
    assert all(webhook_id.startswith("msg_") and len(webhook_id) == 36 for webhook_id in ids)


def test_failed_records_without_a_request_id_get_ids_of_their_own() -> None:
    one = failed(None).model_copy(update={"raw": "first"})
    two = failed(None).model_copy(update={"raw": "second"})

    assert webhook_id_for(one) != webhook_id_for(two)


def test_a_delivery_is_enqueued_due_at_once_for_a_tenant_with_a_webhook_url() -> None:
    outcome = dispatched()

    found = delivery_for(outcome, record("https://hooks.example/sms"), T0)

    assert found is not None
    key, pending = found
    assert key == delivery_key("acme", webhook_id_for(outcome))
    assert (pending.type, pending.first_at, pending.next_at, pending.attempts) == ("sms.dispatched", T0, T0, 0)
    assert pending.payload.encode() == webhook_body(outcome)
    assert PendingDelivery.model_validate_json(pending.to_bytes()) == pending


def test_no_delivery_for_a_tenant_without_a_webhook_url_or_no_tenant() -> None:
    unknown = ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="no")

    assert delivery_for(dispatched(), record(None), T0) is None
    assert delivery_for(dispatched(), unknown, T0) is None
    assert delivery_for(dispatched(), None, T0) is None
    assert delivery_for(SmsFailed(error=unknown), record("https://hooks.example"), T0) is None
