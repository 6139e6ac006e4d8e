"""The keyring: seals tenant configs under the first key, opens them under any listed key."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import ValidationError

from smsdispatch.adapters.crypto._errors import KeyConfigError, UnsealError
from smsdispatch.adapters.crypto._keys import ENV_VAR, key_id, split_key_list
from smsdispatch.contract import EncryptedConfig, PlatformConfig, TenantConfig
from smsdispatch.contract.settings import Settings

Sealed = TypeVar("Sealed", TenantConfig, PlatformConfig)


class Keyring:
    """The keys of ``SMSDISPATCH_ENCRYPTION_KEYS``, in order: the first encrypts, every one decrypts.

    Built on Fernet (AES-128-CBC with HMAC-SHA256: authenticated, so a tampered ciphertext is refused rather
    than decrypted into garbage). ``repr()`` shows key ids only.
    """

    def __init__(self, raw_keys: Sequence[bytes]) -> None:
        if not raw_keys:
            raise KeyConfigError(f"{ENV_VAR} holds no key: run `smsdispatch keygen` and export the key it prints.")
        self._fernets: dict[str, Fernet] = {}
        for raw in raw_keys:
            kid = key_id(raw)
            if kid in self._fernets:
                # Two different keys, one 64-bit id: astronomically unlikely, but never guess which is which.
                raise KeyConfigError(f"{ENV_VAR} lists two different keys with the same key id {kid}.")
            self._fernets[kid] = Fernet(base64.urlsafe_b64encode(raw))
        self._current_kid = next(iter(self._fernets))
        self._all_keys = MultiFernet(list(self._fernets.values()))

    @classmethod
    def from_value(cls, value: str | None) -> Keyring:
        """Build from the variable's text (``None`` when unset). Raises :class:`KeyConfigError`."""
        return cls(split_key_list(value))

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """Build from the ``SMSDISPATCH_ENCRYPTION_KEYS`` of ``settings`` (read once, by the caller)."""
        secret = settings.encryption_keys
        return cls.from_value(secret.get_secret_value() if secret is not None else None)

    @property
    def current_kid(self) -> str:
        """Id of the key that :meth:`seal` and :meth:`reseal` encrypt with (the first listed)."""
        return self._current_kid

    @property
    def kids(self) -> tuple[str, ...]:
        """Ids of every key, in the listed order."""
        return tuple(self._fernets)

    def __repr__(self) -> str:
        return f"Keyring(current_kid={self._current_kid!r}, kids={list(self._fernets)!r})"

    def seal(self, config: TenantConfig | PlatformConfig) -> EncryptedConfig:
        """Encrypt a tenant config (a Twilio one, or a platform tenant's secrets) under the current key."""
        token = self._fernets[self._current_kid].encrypt(config.to_plaintext_json())
        return EncryptedConfig(kid=self._current_kid, ciphertext=token.decode("ascii"))

    def unseal(self, envelope: EncryptedConfig) -> TenantConfig:
        """Decrypt and validate a sealed Twilio tenant config. Raises :class:`UnsealError` naming the key id."""
        return self._open(envelope, TenantConfig)

    def unseal_platform(self, envelope: EncryptedConfig) -> PlatformConfig:
        """Decrypt and validate a platform tenant's sealed secrets. Raises :class:`UnsealError` naming the key id."""
        return self._open(envelope, PlatformConfig)

    def _open(self, envelope: EncryptedConfig, model: type[Sealed]) -> Sealed:
        plaintext, _ = self._decrypt(envelope)
        kid = _printable_kid(envelope.kid)
        try:
            return model.model_validate_json(plaintext)
        except ValidationError as exc:
            # Field names only: the validation error's inputs are the decrypted secrets.
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            where = f" (check: {', '.join(fields)})" if fields else ""
            raise UnsealError(
                f"The tenant config sealed with key {kid} decrypts but is not a valid tenant config{where}.",
                kid=envelope.kid,
            ) from None

    def is_current(self, envelope: EncryptedConfig) -> bool:
        """Whether the envelope names the current key (so :meth:`reseal` would leave it as it is)."""
        return envelope.kid == self._current_kid

    def reseal(self, envelope: EncryptedConfig) -> EncryptedConfig:
        """The same config encrypted under the current key; the envelope itself when it already is.

        The ciphertext is authenticated before anything is re-encrypted, so a damaged record raises
        :class:`UnsealError` instead of being laundered into a valid-looking one.
        """
        plaintext, opened_by_named_key = self._decrypt(envelope)
        if opened_by_named_key and envelope.kid == self._current_kid:
            return envelope
        token = self._fernets[self._current_kid].encrypt(plaintext)
        return EncryptedConfig(kid=self._current_kid, ciphertext=token.decode("ascii"))

    def _decrypt(self, envelope: EncryptedConfig) -> tuple[bytes, bool]:
        """Plaintext, and whether the key the envelope names is the one that opened it.

        The named key is tried first; then every key, as MultiFernet does. That keeps a record readable whose
        kid label was lost or mangled: the kid is a hint for speed and error messages, the authentication tag
        is what decides.
        """
        # Fernet tokens are ASCII: anything that is not (even a lone surrogate) simply fails authentication.
        token = envelope.ciphertext.encode("utf-8", "replace")
        named = self._fernets.get(envelope.kid)
        if named is not None:
            try:
                return named.decrypt(token), True
            except InvalidToken:
                pass  # perhaps mislabelled: the other keys get their chance below
        try:
            return self._all_keys.decrypt(token), False
        except InvalidToken:
            pass
        shown = _printable_kid(envelope.kid)
        if named is not None:
            raise UnsealError(
                f"The tenant config sealed with key {shown} fails authentication: "
                "its ciphertext was altered or is not a Fernet token.",
                kid=envelope.kid,
            )
        raise UnsealError(
            f"The tenant config is sealed with key {shown}, which is not in {ENV_VAR} "
            f"(known key ids: {', '.join(self._fernets)}).",
            kid=envelope.kid,
        )


def _printable_kid(kid: str) -> str:
    """The kid as printed: ours are hex; anything else comes from a foreign or damaged record, so quote it."""
    return kid if kid.isascii() and kid.isalnum() else repr(kid)
