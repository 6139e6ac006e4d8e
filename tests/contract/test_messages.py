"""Every rule docs/contract.md sets for SmsRequested, and the shape of the outcome models.

Requests are validated from JSON bytes, as the worker reads them off ``sms.requested``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from smsdispatch.contract import ErrorCode, ErrorInfo, SmsDispatched, SmsFailed, SmsRequested, SmsStatus

OMIT = object()
VALID: dict[str, Any] = {
    "request_id": "req-1",
    "tenant_id": "acme",
    "to": "+14155552671",
    "body": "Hello",
}


def parse(**changes: Any) -> SmsRequested:
    """A valid request with ``changes`` applied (``OMIT`` removes a field), read from JSON bytes."""
    document = {**VALID, **changes}
    document = {key: value for key, value in document.items() if value is not OMIT}
    return SmsRequested.model_validate_json(json.dumps(document).encode())


def rejected_fields(**changes: Any) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        parse(**changes)
    return {str(error["loc"][0]) for error in caught.value.errors() if error["loc"]}


# --- the request as a whole ---------------------------------------------------------------------------------


def test_minimal_request_is_accepted_with_empty_optionals() -> None:
    request = parse()
    assert (request.request_id, request.tenant_id, request.to, request.body) == (
        "req-1",
        "acme",
        "+14155552671",
        "Hello",
    )
    assert request.requested_at is None
    assert request.metadata == {}
    assert request.resend_of is None


def test_full_request_survives_a_json_round_trip() -> None:
    request = parse(requested_at="2024-05-01T12:00:00Z", metadata={"order": "1234"}, resend_of="req-0")
    assert SmsRequested.model_validate_json(request.to_bytes()) == request


@pytest.mark.parametrize("field", ["request_id", "tenant_id", "to", "body"])
def test_missing_required_field_is_rejected(field: str) -> None:
    assert rejected_fields(**{field: OMIT}) == {field}


def test_unknown_fields_are_ignored() -> None:
    request = parse(priority=5, nested={"anything": [1, 2]}, callback_url="https://example.com")
    assert request == parse()
    assert "priority" not in json.loads(request.to_bytes())


@pytest.mark.parametrize("document", [b"[]", b'"text"', b"null", b"42", b"not json", b'{"request_id": "r"'])
def test_value_that_is_not_a_json_object_is_rejected(document: bytes) -> None:
    with pytest.raises(ValidationError):
        SmsRequested.model_validate_json(document)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_id", 123),
        ("tenant_id", 7),
        ("to", 14155552671),
        ("body", 42),
        ("body", True),
        ("body", ["Hello"]),
        ("resend_of", 5),
        ("metadata", {"order": 1234}),
        ("metadata", {"flag": True}),
    ],
)
def test_types_are_strict_nothing_is_coerced_to_a_string(field: str, value: Any) -> None:
    assert rejected_fields(**{field: value}) == {field}


# --- request_id ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["r", "x" * 128, "order 1234 / ünïcode ✓"])
def test_request_id_of_1_to_128_characters_is_accepted(request_id: str) -> None:
    assert parse(request_id=request_id).request_id == request_id


@pytest.mark.parametrize("request_id", ["", "x" * 129])
def test_request_id_outside_1_to_128_characters_is_rejected(request_id: str) -> None:
    assert rejected_fields(request_id=request_id) == {"request_id"}


# --- tenant_id ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant_id", ["a", "Acme_Corp-2.eu", "0", "t" * 64, "..", "-_."])
def test_tenant_id_of_allowed_characters_is_accepted(tenant_id: str) -> None:
    assert parse(tenant_id=tenant_id).tenant_id == tenant_id


@pytest.mark.parametrize(
    "tenant_id",
    ["", "t" * 65, "acme corp", "acme/eu", "acme:eu", "acmé", "acme\n", "\nacme", "acme\t", "ac*me", "\uff21cme"],
)
def test_tenant_id_outside_the_charset_or_length_is_rejected(tenant_id: str) -> None:
    assert rejected_fields(tenant_id=tenant_id) == {"tenant_id"}


# --- to -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["+14155552671", "+442079460958", "+4915123456789", "+33612345678", "+6591234567"])
def test_e164_number_is_accepted(to: str) -> None:
    assert parse(to=to).to == to


@pytest.mark.parametrize("last_digit", range(10))
def test_twilio_magic_numbers_pass_because_we_check_possible_not_valid(last_digit: int) -> None:
    magic = f"+1500555000{last_digit}"
    assert parse(to=magic).to == magic


@pytest.mark.parametrize(
    "to",
    [
        "",
        "14155552671",  # no plus
        "+1 415 555 2671",  # spaces
        "+1-415-555-2671",
        "(415) 555-2671",
        "+0123456789",  # country codes never start with 0
        "+1415555267",  # too short for +1
        "+141555526712",  # too long for +1
        "+1234567890123456",  # over 15 digits
        "+14155552671\n",  # trailing newline
        " +14155552671",
        "tel:+14155552671",
        "+١٤١٥٥٥٥٢٦٧١",  # Arabic-Indic digits
        "+999123456",  # unassigned country code
    ],
)
def test_anything_but_a_possible_e164_number_is_rejected(to: str) -> None:
    assert rejected_fields(to=to) == {"to"}


# --- body ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["x", "x" * 1600, "😀" * 1600, "é" * 1600])
def test_body_of_1_to_1600_characters_is_accepted(body: str) -> None:
    assert parse(body=body).body == body


@pytest.mark.parametrize("body", ["", "x" * 1601, "😀" * 1601])
def test_body_outside_1_to_1600_characters_is_rejected(body: str) -> None:
    assert rejected_fields(body=body) == {"body"}


# --- requested_at -------------------------------------------------------------------------------------------


def test_requested_at_in_utc_is_read_as_an_aware_datetime() -> None:
    assert parse(requested_at="2024-05-01T12:00:00Z").requested_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_requested_at_keeps_its_offset_and_fraction() -> None:
    requested_at = parse(requested_at="2024-05-01T12:00:00.250-05:30").requested_at
    assert requested_at == datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone(-timedelta(hours=5, minutes=30)))


@pytest.mark.parametrize("text", ["2024-05-01t12:00:00z", "2024-05-01 12:00:00+00:00"])
def test_requested_at_accepts_rfc3339_lowercase_and_space_forms(text: str) -> None:
    assert parse(requested_at=text).requested_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_requested_at_without_offset_is_read_as_utc() -> None:
    assert parse(requested_at="2024-05-01T12:00:00").requested_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_requested_at_may_be_null() -> None:
    assert parse(requested_at=None).requested_at is None


@pytest.mark.parametrize(
    "requested_at",
    [
        "1714564800",  # Unix seconds in a string
        1714564800,
        1714564800.5,
        "2024-05-01",
        "2024-05-01T12:00Z",  # no seconds
        "2024-02-30T12:00:00Z",
        "2024-05-01T25:00:00Z",
        "yesterday",
        "",
        "2024-05-01T12:00:00+0200",  # offset without colon is ISO 8601 basic, not RFC 3339
    ],
)
def test_requested_at_that_is_not_rfc3339_is_rejected(requested_at: Any) -> None:
    assert rejected_fields(requested_at=requested_at) == {"requested_at"}


# --- metadata -----------------------------------------------------------------------------------------------


def test_metadata_of_strings_is_kept() -> None:
    assert parse(metadata={"order": "1234", "": "", "ü": "✓"}).metadata == {"order": "1234", "": "", "ü": "✓"}


def test_metadata_null_means_none_given() -> None:
    assert parse(metadata=None).metadata == {}


@pytest.mark.parametrize("metadata", [{"k": None}, {"k": {"nested": "x"}}, {"k": ["a"]}, ["k", "v"], "k=v"])
def test_metadata_that_is_not_string_to_string_is_rejected(metadata: Any) -> None:
    assert rejected_fields(metadata=metadata) == {"metadata"}


# --- resend_of ----------------------------------------------------------------------------------------------


def test_resend_of_names_the_original_request() -> None:
    assert parse(resend_of="req-0").resend_of == "req-0"


@pytest.mark.parametrize("resend_of", ["", "x" * 129])
def test_resend_of_must_be_a_request_id(resend_of: str) -> None:
    assert rejected_fields(resend_of=resend_of) == {"resend_of"}


# --- outcomes -----------------------------------------------------------------------------------------------


def dispatched(**changes: Any) -> SmsDispatched:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "tenant_id": "acme",
        "provider_message_id": "SM" + "0" * 32,
        "status": "queued",
        "to": "+14155552671",
        "segments": 1,
        "encoding": "GSM-7",
        "attempts": 1,
        "metadata": {"order": "1234"},
    }
    return SmsDispatched(**{**fields, **changes})


def test_dispatched_outcome_survives_a_json_round_trip_with_aware_timestamps() -> None:
    outcome = dispatched(requested_at=datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert SmsDispatched.model_validate_json(outcome.to_bytes()) == outcome
    assert outcome.provider == "twilio"
    assert outcome.dispatched_at.tzinfo is not None


def test_dispatched_outcome_writes_every_contract_field() -> None:
    assert set(json.loads(dispatched().to_bytes())) == {
        "request_id",
        "tenant_id",
        "provider",
        "provider_message_id",
        "status",
        "to",
        "segments",
        "encoding",
        "attempts",
        "requested_at",
        "dispatched_at",
        "metadata",
        "resend_of",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempts", 0), ("segments", -1), ("encoding", "UTF-8"), ("provider", "nexmo"), ("segments", "1")],
)
def test_dispatched_outcome_refuses_values_outside_the_contract(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        dispatched(**{field: value})


def test_error_codes_are_exactly_those_of_the_contract() -> None:
    assert {code.value for code in ErrorCode} == {
        "invalid_request",
        "unknown_tenant",
        "tenant_not_verified",
        "provider_rejected",
        "provider_auth_failed",
        "rate_limited",
        "provider_unavailable",
        "outcome_unknown",
        "expired",
        "recipient_opted_out",
    }


def test_failed_outcome_for_an_unreadable_record_has_nulls_and_the_raw_value() -> None:
    failed = SmsFailed(error=ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="not JSON"), raw="\\xff garbage")
    document = json.loads(failed.to_bytes())
    assert document["request_id"] is None
    assert document["tenant_id"] is None
    assert document["provider"] is None
    assert document["attempts"] == 0
    assert document["error"] == {
        "code": "invalid_request",
        "message": "not JSON",
        "provider_code": None,
        "retryable": False,
    }
    assert document["raw"] == "\\xff garbage"
    assert SmsFailed.model_validate_json(failed.to_bytes()) == failed


def test_failed_outcome_writes_every_contract_field() -> None:
    failed = SmsFailed(error=ErrorInfo(code=ErrorCode.RATE_LIMITED, message="429", provider_code=20429))
    assert set(json.loads(failed.to_bytes())) == {
        "request_id",
        "tenant_id",
        "provider",
        "to",
        "error",
        "attempts",
        "requested_at",
        "failed_at",
        "metadata",
        "resend_of",
        "raw",
    }


@pytest.mark.parametrize(
    "error",
    [
        {"code": "teapot", "message": "x"},
        {"code": "provider_rejected", "message": "x", "provider_code": "21211"},
        {"code": "provider_rejected", "message": "x", "retryable": "no"},
    ],
)
def test_failed_outcome_refuses_an_error_outside_the_contract(error: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SmsFailed.model_validate_json(json.dumps({"error": error}))


def test_failed_outcome_refuses_negative_attempts() -> None:
    with pytest.raises(ValidationError):
        SmsFailed(error=ErrorInfo(code=ErrorCode.PROVIDER_UNAVAILABLE, message="x"), attempts=-1)


def test_status_receipt_survives_a_json_round_trip() -> None:
    status = SmsStatus(
        tenant_id="acme",
        request_id="req-1",
        provider_message_id="SM" + "0" * 32,
        status="undelivered",
        provider_code=30003,
        raw_dlr_done_date="2405011200",
    )
    assert SmsStatus.model_validate_json(status.to_bytes()) == status
    assert set(json.loads(status.to_bytes())) == {
        "tenant_id",
        "request_id",
        "provider_message_id",
        "status",
        "provider_code",
        "received_at",
        "raw_dlr_done_date",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"request_id": "a\x00b"},
        {"body": "hello\x00"},
        {"metadata": {"k\x00": "v"}},
        {"metadata": {"k": "v\x00"}},
    ],
    ids=["request_id", "body", "metadata-key", "metadata-value"],
)
def test_nul_characters_are_rejected_because_the_dispatch_log_cannot_store_them(changes: dict[str, Any]) -> None:
    assert rejected_fields(**changes) == set(changes)


def test_metadata_is_bounded_so_outcomes_stay_within_kafkas_record_limit() -> None:
    assert parse(metadata={"note": "x" * 16_000}).metadata["note"] == "x" * 16_000
    assert rejected_fields(metadata={"note": "x" * 16_385}) == {"metadata"}
