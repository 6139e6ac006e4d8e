"""Encryption of tenant configs at rest: the envelope in ``TenantRecord.config``.

Keys come from ``SMSDISPATCH_ENCRYPTION_KEYS``: comma-separated keys, each 32 random bytes in URL-safe base64
(``smsdispatch keygen`` prints one). The first key encrypts; every listed key decrypts. Each envelope carries
the id (kid) of the key that sealed it: a truncated SHA-256 of the key, which identifies it without revealing
it. Ciphertexts are Fernet tokens (authenticated: tampering is detected, never decrypted into garbage).

    keyring = Keyring.from_settings(Settings())  # KeyConfigError: one sentence, no key material
    envelope = keyring.seal(config)            # TenantConfig -> EncryptedConfig
    config = keyring.unseal(envelope)          # UnsealError names the kid when it cannot
    envelope = keyring.reseal(envelope)        # re-encrypt under the current key

Rotating the key
----------------
1. ``smsdispatch keygen`` prints NEW. The variable holds OLD today.
2. Workers first: set ``SMSDISPATCH_ENCRYPTION_KEYS=NEW,OLD`` for every worker and restart them. Workers only
   decrypt, so from now on they read records sealed under either key.
3. Then the operators' environment (where ``smsdispatch tenants`` runs): ``NEW,OLD``. New and updated tenants
   are sealed under NEW; records sealed under OLD keep working because OLD is still listed.
4. ``smsdispatch tenants rotate`` re-seals every record not under NEW (:meth:`Keyring.reseal`) and republishes
   it; running it twice does nothing the second time. ``smsdispatch tenants list`` shows each tenant's kid:
   check that all show NEW's.
5. Remove OLD: ``SMSDISPATCH_ENCRYPTION_KEYS=NEW`` everywhere, restart the workers. A record that was missed
   now fails with an error naming OLD's kid; put OLD back second and repeat step 4.

``sms.tenants`` is compacted, so superseded records sealed under OLD linger until Kafka compacts them. If OLD
leaked, rotate the Twilio credentials themselves too: re-sealing does not make an old ciphertext unreadable.
"""

from smsdispatch.adapters.crypto._errors import CryptoError, KeyConfigError, UnsealError
from smsdispatch.adapters.crypto._keyring import Keyring
from smsdispatch.adapters.crypto._keys import ENV_VAR, generate_key, key_id

__all__ = [
    "ENV_VAR",
    "CryptoError",
    "KeyConfigError",
    "Keyring",
    "UnsealError",
    "generate_key",
    "key_id",
]
