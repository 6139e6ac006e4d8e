"""What a simulator run is told: its accounts, and how it should misbehave.

Secrets (auth tokens, API key secrets, MSG91 auth keys, and the MSG91 report URL, whose path carries the receiver's
token) are held as ``SecretStr`` so a config can be printed or logged without leaking them; the simulator reads
them only to check a request's credentials, to sign callbacks and to post reports.
"""

from __future__ import annotations

import random
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smsdispatch.contract import check_sender

_ACCOUNT_SID_SHAPE = r"^AC[0-9a-fA-F]{32}$"
_API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
_MSG91_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]+$")

AccountType = Literal["Trial", "Full"]
AccountStatus = Literal["active", "suspended", "closed"]
Msg91ReportShape = Literal["v3", "new"]


def random_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two-letter prefix and 32 lowercase hex digits (not secret, just unique)."""
    return f"{prefix}{random.getrandbits(128):032x}"


def random_account_sid() -> str:
    return random_sid("AC")


def random_api_key_sid() -> str:
    return random_sid("SK")


def random_token() -> str:
    """An auth token shaped like Twilio's (32 hex digits) for tests and the demo."""
    return f"{random.getrandbits(128):032x}"


class SimAccount(BaseModel):
    """One Twilio account the simulator knows: its credentials, senders and state.

    ``senders`` are what the account owns: E.164 numbers, short codes, alphanumeric IDs and Messaging Service
    SIDs (MG…). ``api_keys`` maps key SIDs to secrets; keys are *Main* keys (they can also fetch the account)
    unless listed in ``standard_api_keys``, which Twilio refuses on ``/Accounts`` with 401/20003.
    """

    model_config = ConfigDict(frozen=True)

    sid: str = Field(pattern=_ACCOUNT_SID_SHAPE)
    token: SecretStr
    senders: list[str] = Field(default_factory=list)
    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    standard_api_keys: frozenset[str] = frozenset()
    account_type: AccountType = "Full"
    status: AccountStatus = "active"
    friendly_name: str | None = None

    @field_validator("token")
    @classmethod
    def _token_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("the auth token must not be empty")
        return value

    @field_validator("senders")
    @classmethod
    def _senders_are_senders(cls, value: list[str]) -> list[str]:
        for sender in value:
            try:
                check_sender(sender)
            except ValueError:
                raise ValueError(
                    f"sender {sender!r} is not an E.164 number, short code, alphanumeric ID or MG… SID"
                ) from None
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_key_sids(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_sid in value:
            if not _API_KEY_SID.match(key_sid):
                raise ValueError(f"API key SID {key_sid!r} must be SK followed by 32 hex digits")
        return value

    @model_validator(mode="after")
    def _standard_keys_are_keys(self) -> SimAccount:
        unknown = self.standard_api_keys - self.api_keys.keys()
        if unknown:
            raise ValueError(f"standard_api_keys lists keys the account does not have: {sorted(unknown)}")
        return self

    @property
    def display_name(self) -> str:
        return self.friendly_name or f"Simulated account {self.sid}"


class Msg91Account(BaseModel):
    """One MSG91 account: its auth key and the Flow template ids it owns (each a non-empty ``[A-Za-z0-9_-]``)."""

    model_config = ConfigDict(frozen=True)

    authkey: SecretStr
    template_ids: frozenset[str]

    @field_validator("authkey")
    @classmethod
    def _authkey_not_empty(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if not key or key != key.strip():
            raise ValueError("the MSG91 authkey must not be empty or carry spaces")
        return value

    @field_validator("template_ids")
    @classmethod
    def _template_ids_are_ids(cls, value: frozenset[str]) -> frozenset[str]:
        if not value:
            raise ValueError("an MSG91 account needs at least one template id")
        for template_id in value:
            if not _MSG91_TEMPLATE_ID.match(template_id):
                raise ValueError(f"template id {template_id!r} is not letters, digits, _ and -")
        return value

    @property
    def label(self) -> str:
        """What the simulator shows for this account: at most the key's first 6 characters, never all of it."""
        key = self.authkey.get_secret_value()
        return key[: min(6, len(key) // 2)] + "…"


class SimulatorConfig(BaseModel):
    """A whole simulator run. Delays are in milliseconds, rates are shares between 0 and 1.

    ``sender_mps`` is every sender's throughput in segments per second, as Twilio meters it: a sender's queued
    messages leave (queued -> sent) no faster than that, so they can outlive a short ValidityPeriod and fail with
    30001. None (the default) is unlimited: messages leave one ``status_delay_ms`` after they were queued.
    """

    model_config = ConfigDict(frozen=True)

    accounts: list[SimAccount] = Field(default_factory=list)
    test_accounts: list[SimAccount] = Field(default_factory=list)
    latency_ms: float = Field(default=0, ge=0)
    concurrency_limit: int | None = Field(default=None, ge=1)
    fail_rate: float = Field(default=0.0, ge=0, le=1)
    undelivered_rate: float = Field(default=0.0, ge=0, le=1)
    status_delay_ms: float = Field(default=200, ge=0)
    callback_retry_delay_ms: float = Field(default=500, ge=0)
    sender_mps: float | None = Field(default=None, gt=0)
    seed: int | None = None
    msg91_accounts: list[Msg91Account] = Field(default_factory=list)
    msg91_report_url: SecretStr | None = None
    msg91_report_shape: Msg91ReportShape = "v3"
    msg91_report_delay_ms: float | None = Field(default=None, ge=0)
    msg91_undelivered_rate: float = Field(default=0.0, ge=0, le=1)
    msg91_body_var: str = Field(default="body", min_length=1)

    @property
    def msg91_report_delay_s(self) -> float:
        delay_ms = self.status_delay_ms if self.msg91_report_delay_ms is None else self.msg91_report_delay_ms
        return delay_ms / 1000

    @field_validator("msg91_report_url")
    @classmethod
    def _report_url_is_http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # the URL is not quoted: its path carries the receiver's secret token
            raise ValueError("the MSG91 report URL must be an http(s) URL with a host")
        return value

    @model_validator(mode="after")
    def _msg91_authkeys_are_unique(self) -> SimulatorConfig:
        keys = [account.authkey.get_secret_value() for account in self.msg91_accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("the same MSG91 authkey is configured twice")
        return self

    @model_validator(mode="after")
    def _sids_are_unique(self) -> SimulatorConfig:
        seen: set[str] = set()
        for account in [*self.accounts, *self.test_accounts]:
            if account.sid in seen:
                raise ValueError(f"account {account.sid} is configured twice")
            seen.add(account.sid)
        for account in self.test_accounts:
            if account.api_keys:
                raise ValueError(f"test account {account.sid} cannot have API keys: test credentials are SID + token")
        key_owners: set[str] = set()
        for account in self.accounts:
            for key_sid in account.api_keys:
                if key_sid in key_owners:
                    raise ValueError(f"API key {key_sid} is configured for two accounts")
                key_owners.add(key_sid)
        return self
