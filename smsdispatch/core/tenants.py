"""Tenant lookups for the dispatcher: the latest TenantRecord per tenant_id, decrypted once, kept in memory.

The records come from the compacted ``sms.tenants`` topic, held whole by every worker
(:mod:`smsdispatch.core.tenant_view`); they stay encrypted there. Decrypted configurations exist only in this
process's memory, cached per record so a tenant's new record (new credentials, re-verification) takes effect on
the next request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from smsdispatch.adapters.sms import ProviderName
from smsdispatch.contract import EncryptedConfig, ErrorCode, ErrorInfo, PlatformConfig, TenantConfig, TenantRecord


@dataclass(frozen=True)
class ReadyTenant:
    """A tenant that can send, with its decrypted configuration (held in memory only), and the provider it sends
    through: ``twilio`` (its own verified account; ``config`` is a :class:`TenantConfig`) or the platform's
    default (``config`` holds only its secrets: a :class:`PlatformConfig`, or the :class:`TenantConfig` of a
    Twilio account not verified)."""

    record: TenantRecord
    config: TenantConfig | PlatformConfig
    provider: ProviderName = "twilio"

    @property
    def twilio(self) -> TenantConfig | None:
        """The tenant's own Twilio configuration when it sends through it; None otherwise."""
        return self.config if self.provider == "twilio" and isinstance(self.config, TenantConfig) else None


ConfigOpener = Callable[[EncryptedConfig], TenantConfig]
PlatformOpener = Callable[[EncryptedConfig], PlatformConfig]


class TenantDirectory:
    """Answers "can this tenant send, and with what?" from the records held in ``store``.

    The rules, per tenant: never registered, ``unknown_tenant``; a verified Twilio account of its own, Twilio;
    otherwise (a Twilio account not verified, or none: ``tenants add``) the platform's ``default_provider``,
    or ``tenant_not_verified`` when there is none. A configuration that cannot be decrypted is
    ``tenant_not_verified`` (retryable: the keys are the operator's to fix), whatever the provider.
    """

    def __init__(
        self,
        store: Mapping[bytes, bytes],
        open_config: ConfigOpener,
        *,
        open_platform: PlatformOpener | None = None,
        default_provider: ProviderName | None = None,
    ) -> None:
        self._store = store
        self._open_config = open_config
        self._open_platform = open_platform
        self._default = default_provider
        self._cache: dict[str, tuple[bytes, ReadyTenant | ErrorInfo]] = {}

    def lookup(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        raw = self._store.get(tenant_id.encode())
        if raw is None:
            self._cache.pop(tenant_id, None)
            return ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message=f"no tenant {tenant_id!r} is registered")
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        answer = self._resolve(tenant_id, raw)
        self._cache[tenant_id] = (raw, answer)
        return answer

    def _resolve(self, tenant_id: str, raw: bytes) -> ReadyTenant | ErrorInfo:
        try:
            record = TenantRecord.model_validate_json(raw)
        except ValidationError:
            return ErrorInfo(
                code=ErrorCode.TENANT_NOT_VERIFIED,
                message=f"the record of tenant {tenant_id!r} on sms.tenants is not a valid TenantRecord",
            )
        own_twilio = record.provider == "twilio" and record.verified
        if not own_twilio and self._default is None:
            why = "has no provider of its own" if record.provider == "platform" else "its Twilio credentials are not"
            why = why if record.provider == "platform" else f"{why} verified"
            return ErrorInfo(
                code=ErrorCode.TENANT_NOT_VERIFIED,
                message=f"tenant {tenant_id!r} is registered but {why}, and no platform default provider is set",
            )
        try:
            config: TenantConfig | PlatformConfig
            if record.provider == "platform":
                if self._open_platform is None:
                    raise RuntimeError("this worker cannot open platform tenants' configurations")
                config = self._open_platform(record.config)
            else:
                config = self._open_config(record.config)
        except Exception as exc:  # the opener's errors name the key id, never the key
            return ErrorInfo(
                code=ErrorCode.TENANT_NOT_VERIFIED,
                message=f"the configuration of tenant {tenant_id!r} cannot be decrypted: {exc}",
                retryable=True,
            )
        provider: ProviderName = "twilio" if own_twilio else self._default or "twilio"
        return ReadyTenant(record=record, config=config, provider=provider)
