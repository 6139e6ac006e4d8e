"""The error hierarchy: what each error says about retrying and which docs/contract.md code it becomes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsdispatch.adapters.twilio import (
    AuthenticationError,
    InvalidMessage,
    MessageRejected,
    MessageTooLong,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ReconciliationUnavailable,
    RetryableError,
    UnknownOutcome,
)
from smsdispatch.contract import ErrorCode


@pytest.mark.parametrize(
    ("error", "parent", "retryable", "code"),
    [
        (InvalidMessage("empty"), PermanentError, False, ErrorCode.INVALID_REQUEST),
        (MessageTooLong("long"), InvalidMessage, False, ErrorCode.INVALID_REQUEST),
        (AuthenticationError("401", http_status=401), PermanentError, False, ErrorCode.PROVIDER_AUTH_FAILED),
        (MessageRejected("21211", provider_code=21211), PermanentError, False, ErrorCode.PROVIDER_REJECTED),
        (RateLimited("429"), RetryableError, True, ErrorCode.RATE_LIMITED),
        (ProviderUnavailable("refused"), RetryableError, True, ErrorCode.PROVIDER_UNAVAILABLE),
        (
            UnknownOutcome("500", to="+14155552671", body="hi", sent_after=datetime.now(UTC)),
            ProviderError,
            False,
            ErrorCode.OUTCOME_UNKNOWN,
        ),
        (ReconciliationUnavailable("20008"), ProviderError, False, ErrorCode.OUTCOME_UNKNOWN),
    ],
)
def test_each_error_declares_whether_it_is_retryable_and_its_contract_code(
    error: ProviderError, parent: type[ProviderError], retryable: bool, code: ErrorCode
) -> None:
    assert isinstance(error, parent)
    assert error.retryable is retryable
    assert error.error_code is code


def test_unknown_outcome_is_not_retryable_although_nothing_proves_it_failed() -> None:
    assert not issubclass(UnknownOutcome, RetryableError | PermanentError)


def test_an_error_made_before_any_request_counts_zero_attempts() -> None:
    assert MessageTooLong("long").attempts == 0


def test_error_carries_twilio_code_http_status_and_attempts() -> None:
    error = MessageRejected("refused", provider_code=21610, http_status=400, attempts=2)

    assert (error.provider_code, error.http_status, error.attempts, str(error)) == (21610, 400, 2, "refused")
    assert repr(error) == "MessageRejected('refused', provider_code=21610, http_status=400, attempts=2)"


def test_rate_limited_keeps_the_retry_after_twilio_asked_for() -> None:
    assert RateLimited("slow down", retry_after=2.5).retry_after == 2.5
