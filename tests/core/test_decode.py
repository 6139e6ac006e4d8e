"""decode_request: every value a producer can put on sms.requested becomes a request or one invalid_request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from smsdispatch.contract import RAW_EXCERPT_BYTES, ErrorCode, SmsFailed, SmsRequested
from smsdispatch.core.decode import decode_request

from .fakes import T0, TO, request_json

VALID: dict[str, Any] = {"request_id": "r-1", "tenant_id": "acme", "to": TO, "body": "Hello"}


def with_fields(**changes: Any) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def decode_failure(value: bytes | None) -> SmsFailed:
    decoded = decode_request(value, T0)
    assert isinstance(decoded, SmsFailed), decoded
    assert decoded.error.code is ErrorCode.INVALID_REQUEST
    assert decoded.error.retryable is False
    # The outcome must be publishable as it is: one JSON value, UTF-8.
    SmsFailed.model_validate_json(decoded.to_bytes())
    return decoded


def identity(failed: SmsFailed) -> dict[str, Any]:
    return {
        name: getattr(failed, name)
        for name in ("request_id", "tenant_id", "to", "metadata", "resend_of")
        if getattr(failed, name)
    }


@pytest.mark.parametrize(
    ("value", "expected_identity"),
    [
        pytest.param(b"\xff\xfe\x00garbage", {}, id="not-utf8"),
        pytest.param(b"hello, world", {}, id="not-json"),
        pytest.param(b'{"request_id": "r-1", "tenant_id": ', {}, id="truncated-json"),
        pytest.param(b"[1, 2, 3]", {}, id="json-array"),
        pytest.param(b"42", {}, id="json-number"),
        pytest.param(b'"send me"', {}, id="json-string"),
        pytest.param(b"null", {}, id="json-null"),
        pytest.param(b"", {}, id="empty-bytes"),
        pytest.param(
            b'{"request_id": "r-1", "tenant_id": "acme"}', {"request_id": "r-1", "tenant_id": "acme"}, id="missing"
        ),
        pytest.param(
            with_fields(to="4155552671"),
            {"request_id": "r-1", "tenant_id": "acme", "to": "4155552671"},
            id="to-not-e164",
        ),
        pytest.param(
            with_fields(to="+1415"), {"request_id": "r-1", "tenant_id": "acme", "to": "+1415"}, id="to-too-short"
        ),
        pytest.param(with_fields(body=""), {"request_id": "r-1", "tenant_id": "acme", "to": TO}, id="empty-body"),
        pytest.param(
            with_fields(body="x" * 1601), {"request_id": "r-1", "tenant_id": "acme", "to": TO}, id="1601-char-body"
        ),
        pytest.param(
            with_fields(tenant_id="acme corp!"),
            {"request_id": "r-1", "tenant_id": "acme corp!", "to": TO},
            id="tenant-charset",
        ),
        pytest.param(
            with_fields(metadata={"campaign": 7}), {"request_id": "r-1", "tenant_id": "acme", "to": TO}, id="meta-int"
        ),
        pytest.param(
            with_fields(request_id="r" * 129, metadata={"campaign": "spring"}),
            {"tenant_id": "acme", "to": TO, "metadata": {"campaign": "spring"}},
            id="request-id-too-long",
        ),
        pytest.param(
            with_fields(requested_at="yesterday", resend_of="r-0"),
            {"request_id": "r-1", "tenant_id": "acme", "to": TO, "resend_of": "r-0"},
            id="requested-at-not-rfc3339",
        ),
        pytest.param(with_fields(request_id=17), {"tenant_id": "acme", "to": TO}, id="request-id-not-a-string"),
    ],
)
def test_a_bad_record_is_one_invalid_request_with_raw_and_what_identity_it_had(
    value: bytes, expected_identity: dict[str, Any]
) -> None:
    failed = decode_failure(value)

    assert identity(failed) == expected_identity
    assert failed.raw == value.decode("utf-8", errors="replace")
    assert failed.attempts == 0
    assert failed.provider is None


def test_a_tombstone_is_an_invalid_request_without_raw() -> None:
    failed = decode_failure(None)

    assert identity(failed) == {}
    assert failed.raw is None
    assert "tombstone" in failed.error.message


def test_the_message_names_the_broken_field() -> None:
    failed = decode_failure(with_fields(to="4155552671"))

    assert "to" in failed.error.message
    assert "E.164" in failed.error.message


def test_raw_keeps_only_the_first_4_kib() -> None:
    value = with_fields(to="not a number", metadata={"note": "n" * 10_000})

    failed = decode_failure(value)

    assert failed.raw == value[:RAW_EXCERPT_BYTES].decode()


def test_raw_cut_inside_a_character_ends_before_it_instead_of_on_a_replacement_character() -> None:
    prefix = b'{"x": "'
    value = prefix + ("é" * 2500).encode() + b'"}'
    assert (RAW_EXCERPT_BYTES - len(prefix)) % 2 == 1  # the cut falls inside an "é"

    failed = decode_failure(value)

    assert failed.raw == value[: RAW_EXCERPT_BYTES - 1].decode()
    assert failed.raw is not None
    assert "\ufffd" not in failed.raw


def test_an_integer_too_long_for_python_is_an_invalid_request_not_a_crash() -> None:
    value = b'{"request_id": "r-1", "count": ' + b"9" * 5000 + b"}"

    failed = decode_failure(value)

    assert "number" in failed.error.message


def test_json_nested_too_deeply_is_an_invalid_request() -> None:
    decode_failure(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("field", ["request_id", "tenant_id", "to", "resend_of"])
def test_an_escaped_lone_surrogate_is_left_out_of_the_failure_so_it_can_be_published(field: str) -> None:
    value = with_fields(**{field: "\ud800"})
    assert b"\\ud800" in value  # the JSON escape, as a producer in another language might write it

    failed = decode_failure(value)

    assert getattr(failed, field) is None


def test_metadata_with_an_escaped_lone_surrogate_is_left_out_of_the_failure() -> None:
    failed = decode_failure(with_fields(metadata={"note": "\udc00"}))

    assert failed.metadata == {}
    assert failed.request_id == "r-1"


def test_a_valid_record_without_requested_at_gets_the_record_timestamp() -> None:
    record_time = datetime(2024, 6, 2, 8, 30, tzinfo=UTC)

    decoded = decode_request(request_json(metadata={"campaign": "spring"}), record_time)

    assert isinstance(decoded, SmsRequested)
    assert decoded.requested_at == record_time
    assert (decoded.request_id, decoded.tenant_id, decoded.to, decoded.body) == ("r-1", "acme", TO, "Hello")
    assert decoded.metadata == {"campaign": "spring"}


def test_a_valid_record_keeps_its_own_requested_at() -> None:
    decoded = decode_request(request_json(requested_at="2024-04-30T09:00:00Z"), T0)

    assert isinstance(decoded, SmsRequested)
    assert decoded.requested_at == datetime(2024, 4, 30, 9, 0, tzinfo=UTC)


def test_unknown_fields_are_ignored() -> None:
    decoded = decode_request(request_json(priority="high", nested={"a": [1, 2]}), T0)

    assert isinstance(decoded, SmsRequested)
