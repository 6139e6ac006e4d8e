"""The contract: what outsiders rely on, as pure data. No I/O; imports nothing else of ours.

The values of docs/contract.md as pydantic v2 models (re-exported here), their JSON Schemas (``jsonschema``),
the topic names (``topics``) and the ``SMSDISPATCH_*`` environment (``settings``; only the CLI reads it).
"""

from smsdispatch.contract._fields import MAX_BODY_CHARS, RAW_EXCERPT_BYTES, check_e164, check_sender
from smsdispatch.contract.messages import (
    ErrorCode,
    ErrorInfo,
    Msg91Options,
    Outcome,
    ProviderOptions,
    SmsDispatched,
    SmsFailed,
    SmsRequested,
    SmsStatus,
    WireModel,
)
from smsdispatch.contract.suppressions import (
    SuppressionRecord,
    SuppressionSource,
    parse_suppression_key,
    suppression_change,
    suppression_key,
)
from smsdispatch.contract.tenants import (
    EncryptedConfig,
    PlatformConfig,
    TenantConfig,
    TenantRecord,
    describe_tenant,
)

__all__ = [
    "MAX_BODY_CHARS",
    "RAW_EXCERPT_BYTES",
    "EncryptedConfig",
    "ErrorCode",
    "ErrorInfo",
    "Msg91Options",
    "Outcome",
    "PlatformConfig",
    "ProviderOptions",
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
