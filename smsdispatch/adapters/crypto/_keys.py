"""Encryption keys as ``SMSDISPATCH_ENCRYPTION_KEYS`` carries them: parsing, validation and key ids."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.fernet import Fernet

from smsdispatch.adapters.crypto._errors import KeyConfigError

ENV_VAR = "SMSDISPATCH_ENCRYPTION_KEYS"

# 32 bytes in URL-safe base64 are 43 characters plus one "=" of padding (which people sometimes strip).
# Checked up front because base64 decoding on its own silently skips characters outside the alphabet.
_KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}=?\Z")
# The kid is a hash of the key under its own label, so it identifies the key without revealing it and can
# never collide with a hash of the same bytes computed for another purpose.
_KID_LABEL = b"smsdispatch/encryption-key-id/v1\x00"
KID_HEX_CHARS = 16


def generate_key() -> str:
    """A new random key, as ``SMSDISPATCH_ENCRYPTION_KEYS`` takes it: what ``Fernet.generate_key()`` gives."""
    return Fernet.generate_key().decode("ascii")


def decode_key(text: str) -> bytes | None:
    """The 32 raw bytes of a URL-safe base64 key, or None when ``text`` is not such a key."""
    if not _KEY_SHAPE.match(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=")
    except binascii.Error:  # pragma: no cover - unreachable after the shape check, kept as a guard
        return None
    return raw if len(raw) == 32 else None


def key_id(raw_key: bytes) -> str:
    """The key's id: the first 16 hex digits of SHA-256 over a label and the key. Not reversible."""
    return hashlib.sha256(_KID_LABEL + raw_key).hexdigest()[:KID_HEX_CHARS]


def split_key_list(value: str | None) -> list[bytes]:
    """Parse the variable's value into raw keys, in order, without duplicates.

    Raises :class:`KeyConfigError` with one sentence naming the problem and the entry's position, never its
    content. A blank entry is an error rather than skipped: ``"$NEW_KEY,$OLD_KEY"`` with ``NEW_KEY`` unset
    would otherwise quietly make the old key the one that encrypts.
    """
    if value is None:
        raise KeyConfigError(f"{ENV_VAR} is not set: run `smsdispatch keygen` and export the key it prints.")
    if not value.strip():
        raise KeyConfigError(f"{ENV_VAR} is empty: run `smsdispatch keygen` and export the key it prints.")
    keys: list[bytes] = []
    for position, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            raise KeyConfigError(f"{ENV_VAR} entry {position} is empty: remove the stray comma or add the key.")
        raw = decode_key(entry)
        if raw is None:
            raise KeyConfigError(f"{ENV_VAR} entry {position} is not a 32-byte URL-safe base64 key.")
        # The same key listed twice (say, while a rotation is half done) means nothing more than once.
        if raw not in keys:
            keys.append(raw)
    return keys
