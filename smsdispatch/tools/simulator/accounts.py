"""Who is calling: HTTP Basic credentials checked against the configured accounts and API keys.

Rules, as Twilio applies them (docs/reference/twilio.md, twilio.com/docs/iam/api-keys):
- ``AccountSid:AuthToken`` or ``ApiKeySid:ApiKeySecret``; anything else is 401/20003.
- An API key authenticates only for the account that owns it: a key used under another account's path is
  401/20003 (the key is looked up within the path's account, so it simply does not exist there).
- Account credentials under another account's path are 404/20404: the caller is authenticated but, not being
  that account's parent, cannot see it.
- Standard API keys cannot use the ``/Accounts`` resource itself (401/20003); Main keys can.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from smsdispatch.tools.simulator.config import SimAccount, SimulatorConfig


@dataclass(frozen=True, slots=True)
class Principal:
    """Authenticated credentials: the account they belong to, and how they were presented."""

    account: SimAccount
    is_test: bool
    api_key_sid: str | None = None
    is_standard_key: bool = False


@dataclass(frozen=True, slots=True)
class _Credential:
    secret: bytes
    principal: Principal


class AccountBook:
    """Looks up accounts by SID and authenticates ``Authorization`` headers (successes are cached)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._accounts: dict[str, Principal] = {}
        self._credentials: dict[str, _Credential] = {}
        for account in config.accounts:
            self._add_account(account, is_test=False)
            for key_sid, secret in account.api_keys.items():
                principal = Principal(
                    account, False, api_key_sid=key_sid, is_standard_key=key_sid in account.standard_api_keys
                )
                self._credentials[key_sid] = _Credential(secret.get_secret_value().encode(), principal)
        for account in config.test_accounts:
            self._add_account(account, is_test=True)
        self._verified: dict[str, Principal] = {}

    def _add_account(self, account: SimAccount, *, is_test: bool) -> None:
        principal = Principal(account, is_test)
        self._accounts[account.sid] = principal
        self._credentials[account.sid] = _Credential(account.token.get_secret_value().encode(), principal)

    def account(self, sid: str) -> Principal | None:
        """The account with this SID (as its own principal), or None."""
        return self._accounts.get(sid)

    @property
    def live_accounts(self) -> list[SimAccount]:
        return [p.account for p in self._accounts.values() if not p.is_test]

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal for a ``Basic`` header, or None for missing or wrong credentials."""
        if authorization is None:
            return None
        cached = self._verified.get(authorization)
        if cached is not None:
            return cached
        username, password = _parse_basic(authorization)
        if username is None or password is None:
            return None
        credential = self._credentials.get(username)
        if credential is None or not hmac.compare_digest(credential.secret, password):
            return None
        if len(self._verified) < 10_000:  # bounded: only valid headers get here, but stay safe
            self._verified[authorization] = credential.principal
        return credential.principal


def _parse_basic(authorization: str) -> tuple[str | None, bytes | None]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None, None
    username, separator, password = decoded.partition(b":")
    if not separator:
        return None, None
    try:
        return username.decode("utf-8"), password
    except UnicodeDecodeError:
        return None, None
