"""Outcome builders for the storage tests: a realistic value, with any field changed by keyword."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from smsdispatch.contract import ErrorCode, ErrorInfo, SmsDispatched, SmsFailed, SmsStatus

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def dispatched(request_id: str = "req-1", **changes: Any) -> SmsDispatched:
    values: dict[str, Any] = {
        "request_id": request_id,
        "tenant_id": "acme",
        "provider_message_id": f"SM{request_id}",
        "status": "queued",
        "to": "+14155552671",
        "segments": 1,
        "encoding": "GSM-7",
        "attempts": 1,
        "requested_at": T0,
        "dispatched_at": T0 + timedelta(seconds=1),
        "metadata": {"campaign": "spring"},
    }
    return SmsDispatched(**(values | changes))


def failed(
    request_id: str | None = "req-1", code: ErrorCode = ErrorCode.PROVIDER_REJECTED, **changes: Any
) -> SmsFailed:
    values: dict[str, Any] = {
        "request_id": request_id,
        "tenant_id": "acme",
        "provider": "twilio",
        "to": "+14155552671",
        "error": ErrorInfo(code=code, message="The 'To' number is not a valid phone number.", provider_code=21211),
        "attempts": 1,
        "requested_at": T0,
        "failed_at": T0 + timedelta(seconds=1),
    }
    return SmsFailed(**(values | changes))


def receipt(
    status: str, seconds: int, request_id: str | None = "req-1", sid: str = "SMreq-1", **changes: Any
) -> SmsStatus:
    values: dict[str, Any] = {
        "tenant_id": "acme",
        "request_id": request_id,
        "provider_message_id": sid,
        "status": status,
        "received_at": T0 + timedelta(seconds=seconds),
    }
    return SmsStatus(**(values | changes))
