"""The fake Twilio account unit tests share: one set of constants, imported everywhere, copied nowhere.

The SIDs have Twilio's shapes (AC/SK/MG and 32 hex digits); the secrets are distinctive, so a test that checks
a secret never leaks can search for them.
"""

from datetime import datetime

from pydantic import SecretStr

from smsdispatch.contract import EncryptedConfig, SmsDispatched, TenantConfig, TenantRecord
from smsdispatch.core.tenants import ReadyTenant

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "tok-5e3c2f1a9b8d7e6f"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "keysecret-0b1c2d3e4f"
SERVICE_SID = "MG" + "00112233445566778899aabbccddeeff"
FROM_NUMBER = "+15005550006"
TO = "+14155552671"
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM="  # base64 of b"secret-key-bytes-for-tests"


def token_config(from_number: str = FROM_NUMBER, webhook_secret: str | None = None) -> TenantConfig:
    """The account's config with its auth token (REST calls and callback signatures)."""
    secret = SecretStr(webhook_secret) if webhook_secret else None
    return TenantConfig(
        account_sid=ACCOUNT_SID, auth_token=SecretStr(AUTH_TOKEN), from_number=from_number, webhook_secret=secret
    )


def api_key_config(from_number: str = FROM_NUMBER) -> TenantConfig:
    """The account's config with an API key and no auth token (so no callback signatures)."""
    return TenantConfig(
        account_sid=ACCOUNT_SID,
        api_key_sid=API_KEY_SID,
        api_key_secret=SecretStr(API_KEY_SECRET),
        from_number=from_number,
    )


def ready_tenant(
    tenant_id: str = "acme",
    *,
    test_credentials: bool = False,
    webhook_url: str | None = None,
    webhook_secret: str | None = WEBHOOK_SECRET,
    mps: int | None = None,
) -> ReadyTenant:
    """A verified tenant as the tenant directory hands it out: its record (the config sealed as a placeholder)
    and its decrypted config on this account."""
    record = TenantRecord(
        tenant_id=tenant_id,
        config=EncryptedConfig(kid="k1", ciphertext="sealed"),
        verified=True,
        test_credentials=test_credentials,
        webhook_url=webhook_url,
        mps=mps,
    )
    return ReadyTenant(record=record, config=token_config(webhook_secret=webhook_secret))


def dispatched_record(
    n: int = 1,
    *,
    tenant_id: str = "acme",
    request_id: str | None = None,
    sid: str | None = None,
    status: str = "queued",
    at: datetime,
    **extra: object,
) -> SmsDispatched:
    """The ``sms.dispatched`` record of request ``r-<n>`` (SID ``SM`` + n in hex), dispatched ``at``."""
    return SmsDispatched.model_validate(
        {
            "request_id": request_id or f"r-{n}",
            "tenant_id": tenant_id,
            "provider_message_id": sid or f"SM{n:032x}",
            "status": status,
            "to": TO,
            "segments": 1,
            "encoding": "GSM-7",
            "attempts": 1,
            "dispatched_at": at,
            **extra,
        }
    )
