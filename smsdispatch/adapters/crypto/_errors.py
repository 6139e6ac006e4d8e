"""The errors of the crypto package: each carries one sentence that is safe to print (no key material)."""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error raised by :mod:`smsdispatch.adapters.crypto`."""


class KeyConfigError(CryptoError):
    """``SMSDISPATCH_ENCRYPTION_KEYS`` is missing or malformed; the message names the entry, never the key."""


class UnsealError(CryptoError):
    """A sealed tenant config could not be opened: unknown key id, tampered ciphertext or invalid content.

    ``kid`` is the key id the envelope names, so operators can tell which key is missing from the list.
    """

    def __init__(self, message: str, kid: str) -> None:
        super().__init__(message)
        self.kid = kid
