"""The JSON Schemas producers in other languages rely on: complete, faithful to the models, committed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from smsdispatch.contract import (
    ErrorCode,
    ErrorInfo,
    SmsDispatched,
    SmsFailed,
    SmsRequested,
    SmsStatus,
    SuppressionRecord,
    SuppressionSource,
    TenantRecord,
)
from smsdispatch.contract.jsonschema import DIALECT, json_schemas, render

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "schemas"
REGENERATE = "run `smsdispatch schemas --out schemas` at the repository root and commit the result"

EXPECTED_FILES = {
    "sms.requested.schema.json": SmsRequested,
    "sms.dispatched.schema.json": SmsDispatched,
    "sms.failed.schema.json": SmsFailed,
    "sms.status.schema.json": SmsStatus,
    "sms.tenants.schema.json": TenantRecord,
    "sms.suppressions.schema.json": SuppressionRecord,
}


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return json_schemas()


@pytest.fixture(scope="module")
def requested(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return schemas["sms.requested.schema.json"]


def matches(pattern: str, text: str) -> bool:
    """JSON Schema's (ECMA-262) reading of an anchored pattern: ``$`` is the end of the text, nothing before."""
    return re.fullmatch(pattern, text) is not None


# --- completeness -------------------------------------------------------------------------------------------


def test_there_is_one_schema_per_contract_value(schemas: dict[str, dict[str, Any]]) -> None:
    assert {name: schema["title"] for name, schema in schemas.items()} == {
        name: model.__name__ for name, model in EXPECTED_FILES.items()
    }


def test_every_schema_declares_dialect_unique_id_and_description(schemas: dict[str, dict[str, Any]]) -> None:
    ids = [schema["$id"] for schema in schemas.values()]
    assert len(set(ids)) == len(schemas)
    for schema in schemas.values():
        assert schema["$schema"] == DIALECT
        assert schema["type"] == "object"
        assert schema["description"].strip()


def test_rendering_is_stable_sorted_and_newline_terminated(schemas: dict[str, dict[str, Any]]) -> None:
    for schema in schemas.values():
        text = render(schema)
        assert text.endswith("}\n")
        assert render(json.loads(text)) == text
        assert list(json.loads(text)) == sorted(json.loads(text))


# --- SmsRequested carries the contract's rules --------------------------------------------------------------


def test_request_schema_requires_exactly_the_mandatory_fields(requested: dict[str, Any]) -> None:
    assert set(requested["required"]) == {"request_id", "tenant_id", "to", "body"}
    assert set(requested["properties"]) == {
        "request_id",
        "tenant_id",
        "to",
        "body",
        "requested_at",
        "metadata",
        "resend_of",
        "expires_at",
        "provider_options",
    }


def test_request_schema_allows_unknown_fields_as_the_reader_does(requested: dict[str, Any]) -> None:
    assert requested.get("additionalProperties", True) is True


def test_request_schema_states_lengths_charset_and_formats(requested: dict[str, Any]) -> None:
    properties = requested["properties"]
    assert (properties["request_id"]["minLength"], properties["request_id"]["maxLength"]) == (1, 128)
    assert (properties["tenant_id"]["minLength"], properties["tenant_id"]["maxLength"]) == (1, 64)
    assert (properties["body"]["minLength"], properties["body"]["maxLength"]) == (1, 1600)
    assert properties["metadata"]["type"] == "object"
    assert properties["metadata"]["additionalProperties"] == {"type": "string"}
    assert {"type": "string", "format": "date-time"} in properties["requested_at"]["anyOf"]
    for name in ("request_id", "tenant_id", "to", "body"):
        assert properties[name]["type"] == "string"


@pytest.mark.parametrize(
    "tenant_id", ["acme", "Acme_Corp-2.eu", "a b", "acme/eu", "acmé", "acme\n", "\uff21cme", "x" * 64]
)
def test_tenant_id_pattern_agrees_with_the_model(requested: dict[str, Any], tenant_id: str) -> None:
    try:
        SmsRequested(request_id="r", tenant_id=tenant_id, to="+14155552671", body="b")
        accepted = True
    except ValidationError:
        accepted = False
    assert matches(requested["properties"]["tenant_id"]["pattern"], tenant_id) == accepted


@pytest.mark.parametrize(
    "to",
    ["+14155552671", "+15005550006", "+442079460958", "14155552671", "+0123", "+1 415", "+14155552671\n", "+٤٤"],
)
def test_every_number_the_model_accepts_matches_the_e164_pattern(requested: dict[str, Any], to: str) -> None:
    pattern = requested["properties"]["to"]["pattern"]
    try:
        SmsRequested(request_id="r", tenant_id="t", to=to, body="b")
    except ValidationError:
        return  # the pattern checks the shape only; the model also checks the length per country
    assert matches(pattern, to)


@pytest.mark.parametrize("to", ["14155552671", "+0123456", "+1 415 555 2671", "+14155552671\n", "+1234567890123456"])
def test_e164_pattern_refuses_the_wrong_shapes(requested: dict[str, Any], to: str) -> None:
    assert not matches(requested["properties"]["to"]["pattern"], to)


def test_request_schema_example_is_a_valid_request(requested: dict[str, Any]) -> None:
    for example in requested["examples"]:
        SmsRequested.model_validate_json(json.dumps(example))


# --- outputs: the schema lists what we actually write -------------------------------------------------------


def sample_outputs() -> dict[str, Any]:
    envelope = {"alg": "fernet", "kid": "0123456789abcdef", "ciphertext": "gAAAAA"}
    return {
        "sms.dispatched.schema.json": SmsDispatched(
            request_id="r",
            tenant_id="t",
            provider_message_id="SM" + "0" * 32,
            status="queued",
            to="+14155552671",
            segments=1,
            encoding="GSM-7",
            attempts=1,
        ),
        "sms.failed.schema.json": SmsFailed(error=ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="who?")),
        "sms.status.schema.json": SmsStatus(tenant_id="t", provider_message_id="SM1", status="delivered"),
        "sms.tenants.schema.json": TenantRecord.model_validate({"tenant_id": "t", "config": envelope}),
        "sms.suppressions.schema.json": SuppressionRecord(
            tenant_id="t", number="+14155552671", source=SuppressionSource.INBOUND_STOP
        ),
    }


@pytest.mark.parametrize("name", list(sample_outputs()))
def test_output_schema_requires_every_field_we_write(schemas: dict[str, dict[str, Any]], name: str) -> None:
    written = json.loads(sample_outputs()[name].model_dump_json())
    schema = schemas[name]
    assert set(schema["required"]) == set(schema["properties"]) == set(written)


def test_failed_schema_lists_the_contract_error_codes(schemas: dict[str, dict[str, Any]]) -> None:
    failed = schemas["sms.failed.schema.json"]
    assert set(failed["$defs"]["ErrorCode"]["enum"]) == {code.value for code in ErrorCode}
    assert set(failed["$defs"]["ErrorInfo"]["required"]) == {"code", "message", "provider_code", "retryable"}


def test_tenants_schema_has_no_plaintext_credential_fields(schemas: dict[str, dict[str, Any]]) -> None:
    text = render(schemas["sms.tenants.schema.json"])
    for secret_field in ("auth_token", "api_key_secret", "account_sid"):
        assert secret_field not in text


# --- the committed files ------------------------------------------------------------------------------------


def test_committed_schema_files_are_up_to_date(schemas: dict[str, dict[str, Any]]) -> None:
    on_disk = {path.name for path in COMMITTED.glob("*.schema.json")}
    assert on_disk == set(schemas), f"schemas/ does not hold one file per value: {REGENERATE}."
    for name, schema in schemas.items():
        committed = (COMMITTED / name).read_text(encoding="utf-8")
        assert committed == render(schema), f"schemas/{name} is out of date: {REGENERATE}."
