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

from smsdispatch.contract import EncryptedConfig, ErrorCode, ErrorInfo, TenantConfig, TenantRecord


@dataclass(frozen=True)
class ReadyTenant:
    """A verified tenant with its decrypted configuration (held in memory only)."""

    record: TenantRecord
    config: TenantConfig


ConfigOpener = Callable[[EncryptedConfig], TenantConfig]


class TenantDirectory:
    """Answers "can this tenant send, and with what?" from the records held in ``store``."""

    def __init__(self, store: Mapping[bytes, bytes], open_config: ConfigOpener) -> None:
        self._store = store
        self._open_config = open_config
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
        if not record.verified:
            return ErrorInfo(
                code=ErrorCode.TENANT_NOT_VERIFIED,
                message=f"tenant {tenant_id!r} is registered but its Twilio credentials are not verified",
            )
        try:
            config = self._open_config(record.config)
        except Exception as exc:  # the opener's errors name the key id, never the key
            return ErrorInfo(
                code=ErrorCode.TENANT_NOT_VERIFIED,
                message=f"the configuration of tenant {tenant_id!r} cannot be decrypted: {exc}",
                retryable=True,
            )
        return ReadyTenant(record=record, config=config)
