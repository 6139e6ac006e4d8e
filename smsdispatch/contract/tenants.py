"""Tenant configuration: the record on the compacted ``sms.tenants`` topic and the secret it carries.

A tenant either brings its own Twilio account (``provider: "twilio"``, sealed :class:`TenantConfig`) or has no
provider of its own and sends through the platform's default (``provider: "platform"``, sealed
:class:`PlatformConfig`: only its webhook secret). ``TenantRecord.config`` is always an :class:`EncryptedConfig`
envelope. The plaintext configs exist only in memory: ``repr()`` and ``model_dump()`` never show their secrets
(``SecretStr``); only their ``to_plaintext_json`` reveals them, and only the encryption layer calls it.
"""

from __future__ import annotations

import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smsdispatch.contract._fields import (
    ACCOUNT_SID,
    API_KEY_SID,
    MESSAGING_SERVICE_SID,
    Sender,
    TenantId,
    Timestamp,
    utcnow,
)
from smsdispatch.contract.messages import WireModel


class EncryptedConfig(WireModel):
    """Authenticated ciphertext of a :class:`TenantConfig`, tagged with the id of the key that sealed it."""

    alg: Literal["fernet"] = "fernet"
    kid: str = Field(min_length=1, max_length=64)
    ciphertext: str = Field(min_length=1)


class TenantRecord(WireModel):
    """The value on ``sms.tenants`` (key: tenant_id; a null value removes the tenant)."""

    tenant_id: TenantId
    #: ``twilio``: the tenant's own Twilio account (used once verified); ``platform``: none of its own, so it sends
    #: through the platform's default provider (SMSDISPATCH_DEFAULT_PROVIDER).
    provider: Literal["twilio", "platform"] = "twilio"
    config: EncryptedConfig
    verified: bool = False
    verified_at: Timestamp | None = None
    test_credentials: bool = False
    account_type: Literal["Trial", "Full"] | None = None
    updated_at: Timestamp = Field(default_factory=utcnow)
    #: The tenant's sending rate in segments per second (Twilio meters senders in segments); None = unthrottled.
    mps: int | None = Field(default=None, ge=1, le=10_000)
    #: Where every outcome and status record of the tenant is also POSTed (its signing secret is in ``config``).
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)


class TenantConfig(BaseModel):
    """A tenant's decrypted Twilio configuration: the Account SID with an auth token, an API key, or both.

    With an API key, REST calls authenticate with it (Twilio's advice for production); the auth token, when
    given too, is still needed to check the signatures of Twilio's status callbacks.
    """

    # hide_input_in_errors: a failed validation must not print the secrets it was given (str(ValidationError)
    # shows the input otherwise). Callers that render errors should still pass include_input=False.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    account_sid: str
    auth_token: SecretStr | None = Field(default=None, min_length=1)
    api_key_sid: str | None = None
    api_key_secret: SecretStr | None = Field(default=None, min_length=1)
    from_number: Sender
    #: Signs the tenant's webhooks (Standard Webhooks: ``whsec_`` + base64 of the key bytes).
    webhook_secret: SecretStr | None = Field(default=None, min_length=1)

    @field_validator("account_sid")
    @classmethod
    def _account_sid_shape(cls, value: str) -> str:
        if not ACCOUNT_SID.match(value):
            raise ValueError("must be a Twilio Account SID: AC followed by 32 hex digits")
        return value

    @field_validator("api_key_sid")
    @classmethod
    def _api_key_sid_shape(cls, value: str | None) -> str | None:
        if value is not None and not API_KEY_SID.match(value):
            raise ValueError("must be a Twilio API key SID: SK followed by 32 hex digits")
        return value

    @field_validator("auth_token", "api_key_secret", "webhook_secret")
    @classmethod
    def _secret_is_text(cls, value: SecretStr | None) -> SecretStr | None:
        # A lone surrogate (what Python makes of non-UTF-8 bytes in argv) would seal and then never unseal.
        try:
            if value is not None:
                value.get_secret_value().encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        return value

    @model_validator(mode="after")
    def _credentials_present(self) -> Self:
        has_token = self.auth_token is not None and bool(self.auth_token.get_secret_value())
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("an API key needs both its SID and its secret")
        if not has_token and self.api_key_sid is None:
            raise ValueError("give an auth token, or an API key SID with its secret")
        return self

    @property
    def uses_messaging_service(self) -> bool:
        return bool(MESSAGING_SERVICE_SID.match(self.from_number))

    @property
    def basic_auth(self) -> tuple[str, str]:
        """HTTP Basic credentials for REST calls: (ApiKeySid, secret) with a key, else (AccountSid, token)."""
        if self.api_key_sid is not None and self.api_key_secret is not None:
            return self.api_key_sid, self.api_key_secret.get_secret_value()
        assert self.auth_token is not None  # guaranteed by _credentials_present
        return self.account_sid, self.auth_token.get_secret_value()

    @property
    def signing_token(self) -> str | None:
        """The auth token Twilio signs callbacks with (None for API-key tenants: callbacks go unverified)."""
        return self.auth_token.get_secret_value() if self.auth_token is not None else None

    def to_plaintext_json(self) -> bytes:
        """The secret-bearing JSON that gets encrypted. Never log or publish what this returns."""
        document = {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token.get_secret_value() if self.auth_token else None,
            "api_key_sid": self.api_key_sid,
            "api_key_secret": self.api_key_secret.get_secret_value() if self.api_key_secret else None,
            "from_number": self.from_number,
            "webhook_secret": self.webhook_secret.get_secret_value() if self.webhook_secret else None,
        }
        return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


class PlatformConfig(BaseModel):
    """The decrypted secrets of a tenant on the platform's default provider: its webhook signing secret, if any."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    webhook_secret: SecretStr | None = Field(default=None, min_length=1)

    def to_plaintext_json(self) -> bytes:
        """The secret-bearing JSON that gets encrypted. Never log or publish what this returns."""
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else None
        return json.dumps({"webhook_secret": secret} if secret else {}).encode()


def describe_tenant(record: TenantRecord, default_provider: str | None = None) -> str:
    """One line about a tenant for ``tenants list``: never the secrets. ``default_provider``: the platform's
    (SMSDISPATCH_DEFAULT_PROVIDER), which tenants without a verified Twilio account send through."""
    if record.provider == "platform":
        state = f"platform default ({default_provider or 'none configured'})"
    elif record.verified:
        state = "verified"
    else:
        fallback = f", sends through the platform default ({default_provider})" if default_provider else ""
        state = f"NOT verified{fallback}"
    kind = " (test credentials)" if record.test_credentials else ""
    account = f", {record.account_type}" if record.account_type else ""
    updated = f"{record.updated_at:%Y-%m-%dT%H:%M:%SZ}"
    rate = f"{record.mps} segments/s" if record.mps is not None else "no rate limit"
    webhook = f"webhook {record.webhook_url}" if record.webhook_url else "no webhook"
    return f"{record.tenant_id}: {state}{kind}{account}, {rate}, {webhook}, key {record.config.kid}, updated {updated}"
