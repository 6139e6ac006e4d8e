"""TenantConfig (the decrypted credentials), its envelope and the TenantRecord on ``sms.tenants``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from smsdispatch.contract import EncryptedConfig, TenantConfig, TenantRecord, describe_tenant
from tests.accounts import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, SERVICE_SID

KEY_SECRET = API_KEY_SECRET


def token_config(**changes: Any) -> TenantConfig:
    fields: dict[str, Any] = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15005550006"}
    return TenantConfig(**{**fields, **changes})


def key_config(**changes: Any) -> TenantConfig:
    fields: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "api_key_sid": API_KEY_SID,
        "api_key_secret": KEY_SECRET,
        "from_number": "+15005550006",
    }
    return TenantConfig(**{**fields, **changes})


# --- credentials: an auth token, an API key pair, or both -----------------------------------------------------


def test_auth_token_config_authenticates_as_the_account() -> None:
    config = token_config()
    assert config.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert config.signing_token == AUTH_TOKEN


def test_api_key_config_authenticates_as_the_key_and_has_no_signing_token() -> None:
    config = key_config()
    assert config.basic_auth == (API_KEY_SID, KEY_SECRET)
    assert config.signing_token is None


def test_token_with_api_key_uses_the_key_for_rest_and_the_token_for_callback_signatures() -> None:
    config = key_config(auth_token=AUTH_TOKEN)
    assert config.basic_auth == (API_KEY_SID, KEY_SECRET)
    assert config.signing_token == AUTH_TOKEN


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="neither"),
        pytest.param({"api_key_sid": API_KEY_SID}, id="key-sid-without-secret"),
        pytest.param({"api_key_secret": KEY_SECRET}, id="key-secret-without-sid"),
        pytest.param({"auth_token": AUTH_TOKEN, "api_key_sid": API_KEY_SID}, id="token-and-half-a-key"),
        pytest.param({"auth_token": AUTH_TOKEN, "api_key_secret": KEY_SECRET}, id="token-and-other-half"),
        pytest.param({"auth_token": ""}, id="empty-token"),
        pytest.param({"api_key_sid": API_KEY_SID, "api_key_secret": ""}, id="empty-key-secret"),
        pytest.param({"auth_token": "tok\udcff"}, id="token-that-is-not-unicode-text"),
    ],
)
def test_missing_empty_or_half_credentials_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TenantConfig(account_sid=ACCOUNT_SID, from_number="+15005550006", **fields)


# --- SID shapes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account_sid",
    [
        "AC" + "0" * 31,
        "AC" + "0" * 33,
        "ac" + "0" * 32,
        "AB" + "0" * 32,
        "AC" + "g" * 32,
        ACCOUNT_SID + "\n",
        API_KEY_SID,
        "",
    ],
)
def test_account_sid_must_be_ac_and_32_hex_digits(account_sid: str) -> None:
    with pytest.raises(ValidationError):
        token_config(account_sid=account_sid)


def test_account_sid_hex_may_be_upper_case() -> None:
    assert token_config(account_sid="AC" + "ABCDEF0123456789" * 2).account_sid.startswith("ACABCDEF")


@pytest.mark.parametrize("api_key_sid", ["SK" + "0" * 31, ACCOUNT_SID, "SK" + "z" * 32, API_KEY_SID + "\n"])
def test_api_key_sid_must_be_sk_and_32_hex_digits(api_key_sid: str) -> None:
    with pytest.raises(ValidationError):
        key_config(api_key_sid=api_key_sid)


# --- sender kinds -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param("+14155552671", id="e164"),
        pytest.param("+15005550006", id="magic-number"),
        pytest.param("ACME", id="alphanumeric"),
        pytest.param("Acme Shop 1", id="alphanumeric-11-with-space"),
        pytest.param("A", id="alphanumeric-one-letter"),
        pytest.param("123", id="short-code-3"),
        pytest.param("12345", id="short-code-5"),
        pytest.param("12345678", id="short-code-8"),
        pytest.param(SERVICE_SID, id="messaging-service"),
    ],
)
def test_every_sender_kind_twilio_takes_is_accepted(sender: str) -> None:
    assert token_config(from_number=sender).from_number == sender


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param("", id="empty"),
        pytest.param("12", id="too-short-for-a-short-code"),
        pytest.param("1234567890", id="digits-without-plus"),
        pytest.param("Acme Shop 12", id="alphanumeric-12"),
        pytest.param("ACME!", id="punctuation"),
        pytest.param("ACME\n", id="trailing-newline"),
        pytest.param("+1415555267", id="impossible-e164"),
        pytest.param("MG" + "0" * 31, id="short-service-sid"),
    ],
)
def test_a_sender_twilio_would_refuse_is_rejected(sender: str) -> None:
    with pytest.raises(ValidationError):
        token_config(from_number=sender)


def test_messaging_service_sender_is_recognised() -> None:
    assert token_config(from_number=SERVICE_SID).uses_messaging_service
    assert not token_config(from_number="ACME").uses_messaging_service


def test_unknown_config_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        token_config(region="us1")


# --- secrets stay secret ------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [token_config(), key_config()], ids=["token", "api-key"])
def test_repr_str_and_dumps_never_show_the_secrets(config: TenantConfig) -> None:
    shown = [repr(config), str(config), config.model_dump_json(), repr(config.model_dump())]
    for text in shown:
        assert AUTH_TOKEN not in text
        assert KEY_SECRET not in text


@pytest.mark.parametrize(
    "fields",
    [
        # Short secrets, placed last: pydantic shortens long inputs in the middle, which would hide them anyway.
        pytest.param({"auth_token": "hunter2\udcff"}, id="field-error-on-the-secret"),
        pytest.param({"auth_token": "hunter2", "api_key_secret": "swordfish"}, id="model-error-half-a-key"),
    ],
)
def test_validation_error_text_never_shows_the_secrets(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        TenantConfig(account_sid=ACCOUNT_SID, from_number="+15005550006", **fields)
    assert "hunter2" not in str(caught.value)
    assert "swordfish" not in str(caught.value)


@pytest.mark.parametrize("config", [token_config(), key_config(), token_config(from_number=SERVICE_SID)])
def test_plaintext_json_round_trips_to_the_same_config(config: TenantConfig) -> None:
    assert TenantConfig.model_validate_json(config.to_plaintext_json()) == config


# --- the record on sms.tenants ------------------------------------------------------------------------------

ENVELOPE = EncryptedConfig(kid="0123456789abcdef", ciphertext="gAAAAAB-opaque")


def test_tenant_record_survives_a_json_round_trip() -> None:
    record = TenantRecord(tenant_id="acme", config=ENVELOPE, verified=True, account_type="Trial")
    assert TenantRecord.model_validate_json(record.to_bytes()) == record


def test_tenant_record_refuses_a_plaintext_config() -> None:
    document = {"tenant_id": "acme", "config": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}}
    with pytest.raises(ValidationError):
        TenantRecord.model_validate_json(json.dumps(document))


def test_plaintext_fields_smuggled_into_an_envelope_are_dropped() -> None:
    document = {"tenant_id": "acme", "config": {**ENVELOPE.model_dump(), "auth_token": AUTH_TOKEN}}
    record = TenantRecord.model_validate_json(json.dumps(document))
    assert AUTH_TOKEN not in record.to_bytes().decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant_id", "acme corp"),
        ("account_type", "Premium"),
        ("provider", "nexmo"),
        ("verified", "yes"),
        ("config", {"alg": "aes-gcm", "kid": "k", "ciphertext": "c"}),
        ("config", {"alg": "fernet", "kid": "", "ciphertext": "c"}),
        ("config", {"alg": "fernet", "kid": "k", "ciphertext": ""}),
    ],
)
def test_tenant_record_refuses_values_outside_the_contract(field: str, value: Any) -> None:
    document = {"tenant_id": "acme", "config": ENVELOPE.model_dump(), field: value}
    with pytest.raises(ValidationError):
        TenantRecord.model_validate_json(json.dumps(document))


def test_describe_tenant_shows_state_and_key_id_but_not_the_ciphertext() -> None:
    record = TenantRecord(tenant_id="acme", config=ENVELOPE, verified=False, test_credentials=True)
    line = describe_tenant(record)
    assert line.startswith("acme: NOT verified (test credentials)")
    assert ENVELOPE.kid in line
    assert ENVELOPE.ciphertext not in line
