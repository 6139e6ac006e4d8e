"""TenantDirectory: whether a tenant can send, and with what, from the tenants table's store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import pytest
from pydantic import SecretStr

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.contract import EncryptedConfig, ErrorCode, ErrorInfo, PlatformConfig, TenantConfig, TenantRecord
from smsdispatch.core.tenants import ReadyTenant, TenantDirectory
from tests.accounts import ACCOUNT_SID, AUTH_TOKEN

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def config(from_number: str = "+15005550006") -> TenantConfig:
    return TenantConfig(account_sid=ACCOUNT_SID, auth_token=SecretStr(AUTH_TOKEN), from_number=from_number)


class CountingKeyring:
    """The worker's keyring, counting how often a config is decrypted."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self.opened = 0

    def __call__(self, envelope: EncryptedConfig) -> TenantConfig:
        self.opened += 1
        return self.keyring.unseal(envelope)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_value(generate_key())


def record(
    keyring: Keyring, tenant_id: str = "acme", *, verified: bool = True, cfg: TenantConfig | None = None
) -> bytes:
    return TenantRecord(
        tenant_id=tenant_id, config=keyring.seal(cfg or config()), verified=verified, updated_at=T0
    ).to_bytes()


def error_of(answer: ReadyTenant | ErrorInfo) -> ErrorInfo:
    assert isinstance(answer, ErrorInfo), answer
    return answer


def test_a_tenant_without_a_record_is_unknown(keyring: Keyring) -> None:
    error = error_of(TenantDirectory({}, keyring.unseal).lookup("ghost"))

    assert error.code is ErrorCode.UNKNOWN_TENANT
    assert "ghost" in error.message


def test_a_tenant_whose_record_is_not_verified_cannot_send(keyring: Keyring) -> None:
    store = {b"acme": record(keyring, verified=False)}

    error = error_of(TenantDirectory(store, keyring.unseal).lookup("acme"))

    assert (error.code, error.retryable) == (ErrorCode.TENANT_NOT_VERIFIED, False)


def test_a_tenant_whose_config_cannot_be_decrypted_cannot_send_and_no_secret_is_told(keyring: Keyring) -> None:
    other_key = generate_key()
    store = {b"acme": record(Keyring.from_value(other_key))}

    error = error_of(TenantDirectory(store, keyring.unseal).lookup("acme"))

    assert (error.code, error.retryable) == (ErrorCode.TENANT_NOT_VERIFIED, True)
    assert "decrypted" in error.message
    assert AUTH_TOKEN not in error.message
    assert other_key not in error.message


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"tenant_id": "acme", "config": "plaintext"}'])
def test_a_stored_value_that_is_not_a_tenant_record_cannot_send(keyring: Keyring, raw: bytes) -> None:
    error = error_of(TenantDirectory({b"acme": raw}, keyring.unseal).lookup("acme"))

    assert error.code is ErrorCode.TENANT_NOT_VERIFIED


def test_a_verified_tenant_is_ready_with_its_decrypted_config(keyring: Keyring) -> None:
    store = {b"acme": record(keyring)}

    ready = TenantDirectory(store, keyring.unseal).lookup("acme")

    assert isinstance(ready, ReadyTenant)
    assert ready.config == config()
    assert ready.record == TenantRecord.model_validate_json(store[b"acme"])


def test_a_verified_tenant_is_decrypted_once_while_its_record_is_unchanged(keyring: Keyring) -> None:
    opener = CountingKeyring(keyring)
    directory = TenantDirectory({b"acme": record(keyring)}, opener)

    first, second = directory.lookup("acme"), directory.lookup("acme")

    assert first is second
    assert opener.opened == 1


def test_a_changed_record_takes_effect_on_the_next_lookup(keyring: Keyring) -> None:
    store = {b"acme": record(keyring)}
    opener = CountingKeyring(keyring)
    directory = TenantDirectory(store, opener)
    before = directory.lookup("acme")

    store[b"acme"] = record(keyring, cfg=config(from_number="+15017122661"))
    after = directory.lookup("acme")

    assert isinstance(before, ReadyTenant)
    assert isinstance(after, ReadyTenant)
    assert before.twilio is not None
    assert after.twilio is not None
    assert (before.twilio.from_number, after.twilio.from_number) == ("+15005550006", "+15017122661")
    assert opener.opened == 2


def test_a_tenant_that_loses_its_verification_stops_being_ready(keyring: Keyring) -> None:
    store = {b"acme": record(keyring)}
    directory = TenantDirectory(store, keyring.unseal)
    assert isinstance(directory.lookup("acme"), ReadyTenant)

    store[b"acme"] = record(keyring, verified=False)

    assert error_of(directory.lookup("acme")).code is ErrorCode.TENANT_NOT_VERIFIED


def test_a_removed_tenant_is_unknown_and_a_re_added_one_is_ready_again(keyring: Keyring) -> None:
    store = {b"acme": record(keyring)}
    directory = TenantDirectory(store, keyring.unseal)
    directory.lookup("acme")

    del store[b"acme"]
    removed = directory.lookup("acme")
    store[b"acme"] = record(keyring)

    assert error_of(removed).code is ErrorCode.UNKNOWN_TENANT
    assert isinstance(directory.lookup("acme"), ReadyTenant)


def test_the_ready_tenant_repr_shows_no_secret(keyring: Keyring) -> None:
    ready = TenantDirectory({b"acme": record(keyring)}, keyring.unseal).lookup("acme")

    assert AUTH_TOKEN not in repr(ready)


def platform_record(keyring: Keyring, tenant_id: str = "acme") -> bytes:
    sealed = keyring.seal(PlatformConfig(webhook_secret=SecretStr("whsec_c2VjcmV0")))
    return TenantRecord(tenant_id=tenant_id, provider="platform", config=sealed, updated_at=T0).to_bytes()


def platform_directory(
    store: dict[bytes, bytes], keyring: Keyring, default: Literal["msg91"] | None = "msg91"
) -> TenantDirectory:
    return TenantDirectory(
        store,
        keyring.unseal,
        open_platform=keyring.unseal_platform,
        default_provider=default,
    )


def test_a_verified_twilio_tenant_sends_through_twilio_even_with_a_platform_default(keyring: Keyring) -> None:
    tenant = platform_directory({b"acme": record(keyring)}, keyring).lookup("acme")

    assert isinstance(tenant, ReadyTenant)
    assert tenant.provider == "twilio"
    assert tenant.twilio is not None


def test_an_unverified_twilio_tenant_sends_through_the_platform_default(keyring: Keyring) -> None:
    tenant = platform_directory({b"acme": record(keyring, verified=False)}, keyring).lookup("acme")

    assert isinstance(tenant, ReadyTenant)
    assert (tenant.provider, tenant.twilio) == ("msg91", None)


def test_a_platform_tenant_sends_through_the_platform_default_with_its_webhook_secret(keyring: Keyring) -> None:
    tenant = platform_directory({b"acme": platform_record(keyring)}, keyring).lookup("acme")

    assert isinstance(tenant, ReadyTenant)
    assert (tenant.provider, tenant.twilio) == ("msg91", None)
    assert tenant.config.webhook_secret is not None
    assert tenant.config.webhook_secret.get_secret_value() == "whsec_c2VjcmV0"


@pytest.mark.parametrize("verified", [False, None], ids=["unverified-twilio", "platform"])
def test_without_a_platform_default_a_tenant_without_verified_twilio_is_not_verified(
    keyring: Keyring, verified: bool | None
) -> None:
    stored = platform_record(keyring) if verified is None else record(keyring, verified=False)

    error = error_of(platform_directory({b"acme": stored}, keyring, default=None).lookup("acme"))

    assert error.code is ErrorCode.TENANT_NOT_VERIFIED
    assert "no platform default provider" in error.message


def test_a_tenant_never_registered_stays_unknown_with_a_platform_default(keyring: Keyring) -> None:
    error = error_of(platform_directory({}, keyring).lookup("ghost"))

    assert error.code is ErrorCode.UNKNOWN_TENANT
