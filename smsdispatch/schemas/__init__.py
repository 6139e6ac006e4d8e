"""Pure data: the values of docs/contract.md as pydantic v2 models. No I/O; imports nothing else of ours."""

from smsdispatch.schemas._fields import MAX_BODY_CHARS, RAW_EXCERPT_BYTES, check_e164, check_sender
from smsdispatch.schemas.messages import (
    ErrorCode,
    ErrorInfo,
    Outcome,
    SmsDispatched,
    SmsFailed,
    SmsRequested,
    SmsStatus,
    WireModel,
)
from smsdispatch.schemas.suppressions import (
    SuppressionRecord,
    SuppressionSource,
    parse_suppression_key,
    suppression_change,
    suppression_key,
)
from smsdispatch.schemas.tenants import EncryptedConfig, TenantConfig, TenantRecord, describe_tenant

__all__ = [
    "MAX_BODY_CHARS",
    "RAW_EXCERPT_BYTES",
    "EncryptedConfig",
    "ErrorCode",
    "ErrorInfo",
    "Outcome",
    "SmsDispatched",
    "SmsFailed",
    "SmsRequested",
    "SmsStatus",
    "SuppressionRecord",
    "SuppressionSource",
    "TenantConfig",
    "TenantRecord",
    "WireModel",
    "check_e164",
    "check_sender",
    "describe_tenant",
    "parse_suppression_key",
    "suppression_change",
    "suppression_key",
]
