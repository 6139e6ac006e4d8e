"""Building outcome records, and the one structured log line each outcome gets (never a secret in it)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from smsdispatch.adapters.sms import ProviderName
from smsdispatch.adapters.twilio import ProviderError, SendResult
from smsdispatch.contract import ErrorInfo, Outcome, SmsDispatched, SmsFailed, SmsRequested


def dispatched_outcome(request: SmsRequested, result: SendResult, attempts: int) -> SmsDispatched:
    return SmsDispatched(
        request_id=request.request_id,
        tenant_id=request.tenant_id,
        provider=result.provider,
        provider_message_id=result.message_id,
        status=result.status,
        to=request.to,
        segments=result.segments,
        encoding=result.encoding,
        attempts=max(attempts, 1),
        requested_at=request.requested_at,
        dispatched_at=datetime.now(UTC),
        metadata=request.metadata,
        resend_of=request.resend_of,
    )


def failed_outcome(
    request: SmsRequested, error: ErrorInfo, attempts: int, provider: ProviderName = "twilio"
) -> SmsFailed:
    """``provider``: the one the request went to (named only when it was tried: ``attempts`` > 0)."""
    return SmsFailed(
        request_id=request.request_id,
        tenant_id=request.tenant_id,
        provider=provider if attempts > 0 else None,
        to=request.to,
        error=error,
        attempts=attempts,
        requested_at=request.requested_at,
        failed_at=datetime.now(UTC),
        metadata=request.metadata,
        resend_of=request.resend_of,
    )


def error_info(error: ProviderError, message: str | None = None) -> ErrorInfo:
    """The docs/contract.md error of a provider error: its code, the provider's numeric code, whether a resend may
    help."""
    return ErrorInfo(
        code=error.error_code,
        message=message or error.message,
        provider_code=error.provider_code,
        retryable=error.retryable or error.resend_may_help,
    )


def log_outcome(logger: logging.Logger, outcome: Outcome) -> None:
    """One line per outcome whose fields (ids, status or error code, attempts) the worker's JSON log lines carry
    as keys of their own. Bodies and credentials stay out. Failures at INFO, successes at DEBUG: a line per SMS
    sent cost about 4% of the worker's CPU, and every outcome is on its topic and in the dispatch log anyway."""
    level = logging.DEBUG if isinstance(outcome, SmsDispatched) else logging.INFO
    if not logger.isEnabledFor(level):
        return
    line: dict[str, object] = {
        "event": "sms.dispatched" if isinstance(outcome, SmsDispatched) else "sms.failed",
        "request_id": outcome.request_id,
        "tenant_id": outcome.tenant_id,
        "attempts": outcome.attempts,
    }
    if isinstance(outcome, SmsDispatched):
        line.update(status=outcome.status, sid=outcome.provider_message_id, segments=outcome.segments)
    else:
        line.update(
            code=outcome.error.code.value,
            provider_code=outcome.error.provider_code,
            retryable=outcome.error.retryable,
            reason=outcome.error.message,
        )
    logger.log(level, "%s %s", line["event"], outcome.request_id, extra={"fields": line})
