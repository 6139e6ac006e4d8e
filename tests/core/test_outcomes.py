"""Outcome builders and the one log line per outcome."""

from __future__ import annotations

import logging

import pytest

from smsdispatch.adapters.twilio import AuthenticationError, RateLimited
from smsdispatch.contract import ErrorCode, ErrorInfo, SmsRequested
from smsdispatch.core.outcomes import dispatched_outcome, error_info, failed_outcome, log_outcome

from .fakes import T0, TO, accepted

REQUEST = SmsRequested(
    request_id="r-1",
    tenant_id="acme",
    to=TO,
    body="Your secret code is 9412",
    requested_at=T0,
    metadata={"campaign": "spring"},
    resend_of="r-0",
)


def test_a_failure_before_any_attempt_names_no_provider() -> None:
    error = ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="no tenant")

    assert failed_outcome(REQUEST, error, attempts=0).provider is None
    assert failed_outcome(REQUEST, error, attempts=2).provider == "twilio"


def test_outcomes_echo_the_requests_identity_metadata_and_resend_of() -> None:
    dispatched = dispatched_outcome(REQUEST, accepted(TO, REQUEST.body), attempts=0)
    failed = failed_outcome(REQUEST, ErrorInfo(code=ErrorCode.RATE_LIMITED, message="429"), attempts=3)

    for outcome in (dispatched, failed):
        assert (outcome.request_id, outcome.tenant_id, outcome.to) == ("r-1", "acme", TO)
        assert (outcome.metadata, outcome.resend_of, outcome.requested_at) == ({"campaign": "spring"}, "r-0", T0)
    assert dispatched.attempts == 1  # a dispatched message took at least one attempt


def test_error_info_carries_the_contract_code_twilios_code_and_whether_a_resend_may_help() -> None:
    limited = error_info(RateLimited("Twilio is rate limiting this account", provider_code=20429, attempts=6))
    refused = error_info(AuthenticationError("Twilio refused the credentials", provider_code=20003))

    assert (limited.code, limited.provider_code, limited.retryable) == (ErrorCode.RATE_LIMITED, 20429, True)
    assert (refused.code, refused.provider_code, refused.retryable) == (ErrorCode.PROVIDER_AUTH_FAILED, 20003, False)


def test_the_log_record_carries_ids_and_code_as_fields_but_never_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("smsdispatch.test-outcomes")
    failed = failed_outcome(
        REQUEST, ErrorInfo(code=ErrorCode.PROVIDER_REJECTED, message="invalid To", provider_code=21211), attempts=1
    )

    with caplog.at_level(logging.DEBUG, logger=logger.name):
        log_outcome(logger, dispatched_outcome(REQUEST, accepted(TO, REQUEST.body, sid="SM" + "d" * 32), 1))
        log_outcome(logger, failed)

    first, second = (record.__dict__["fields"] for record in caplog.records)
    assert first == {
        "event": "sms.dispatched",
        "request_id": "r-1",
        "tenant_id": "acme",
        "attempts": 1,
        "status": "queued",
        "sid": "SM" + "d" * 32,
        "segments": 1,
    }
    assert (second["event"], second["code"], second["provider_code"]) == ("sms.failed", "provider_rejected", 21211)
    assert all("9412" not in record.getMessage() + str(record.__dict__["fields"]) for record in caplog.records)


def test_failures_are_logged_at_info_and_successes_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("smsdispatch.test-outcome-levels")
    failed = failed_outcome(REQUEST, ErrorInfo(code=ErrorCode.EXPIRED, message="stale"), attempts=0)

    with caplog.at_level(logging.INFO, logger=logger.name):
        log_outcome(logger, dispatched_outcome(REQUEST, accepted(TO, REQUEST.body), 1))
        log_outcome(logger, failed)

    assert [(record.levelno, record.__dict__["fields"]["event"]) for record in caplog.records] == [
        (logging.INFO, "sms.failed")
    ]
