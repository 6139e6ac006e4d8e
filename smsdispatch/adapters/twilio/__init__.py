"""Talking to SMS providers (Twilio): send, verify credentials, confirm unknown outcomes.

Usage::

    async with TwilioHttp() as http:                      # one per process, shared by every tenant
        provider = TwilioProvider(tenant_config, http)
        result = await provider.send(OutgoingSms(to="+14155552671", body="Hello"))

This adapter imports only the contract (``smsdispatch.contract``) of ours.
"""

from smsdispatch.adapters.sms import (
    AccountInfo,
    AccountType,
    AiohttpTransport,
    OutgoingSms,
    RetryPolicy,
    SendResult,
)
from smsdispatch.adapters.sms.errors import (
    UNSUBSCRIBED_RECIPIENT,
    AuthenticationError,
    Expired,
    InvalidMessage,
    MessageRejected,
    MessageTooLong,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ReconciliationUnavailable,
    RetryableError,
    UnknownOutcome,
)
from smsdispatch.adapters.twilio.http_client import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT,
    TwilioHttp,
    check_base_url,
)
from smsdispatch.adapters.twilio.segments import Encoding, check_body, encoding_of, segment_info
from smsdispatch.adapters.twilio.signature import SIGNATURE_HEADER, compute_signature, is_valid_signature
from smsdispatch.adapters.twilio.twilio import MessageStatusInfo, TwilioProvider, validity_period

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "SIGNATURE_HEADER",
    "UNSUBSCRIBED_RECIPIENT",
    "AccountInfo",
    "AccountType",
    "AiohttpTransport",
    "AuthenticationError",
    "Encoding",
    "Expired",
    "InvalidMessage",
    "MessageRejected",
    "MessageStatusInfo",
    "MessageTooLong",
    "OutgoingSms",
    "PermanentError",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "ReconciliationUnavailable",
    "RetryPolicy",
    "RetryableError",
    "SendResult",
    "TwilioHttp",
    "TwilioProvider",
    "UnknownOutcome",
    "check_base_url",
    "check_body",
    "compute_signature",
    "encoding_of",
    "is_valid_signature",
    "segment_info",
    "validity_period",
]
