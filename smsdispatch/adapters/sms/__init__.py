"""What every SMS provider adapter shares: the HTTP wire (httpx's transport interface over aiohttp, and how to read
its failures), the errors a provider raises sorted by what the caller may do, the retry policy, and the values that
go in and come out (:class:`OutgoingSms`, :class:`SendResult`).

The provider adapters (``twilio``, ``msg91``) build on it; it imports only the contract. The one exception to
"an adapter never imports another" (tests/test_architecture.py).
"""

from smsdispatch.adapters.sms._transport import AiohttpTransport, nothing_was_sent
from smsdispatch.adapters.sms._wire import ProviderWire
from smsdispatch.adapters.sms.errors import (
    UNSUBSCRIBED_RECIPIENT,
    AccountBlocked,
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
from smsdispatch.adapters.sms.models import AccountInfo, AccountType, OutgoingSms, ProviderName, SendResult
from smsdispatch.adapters.sms.retry import RetryPolicy

__all__ = [
    "UNSUBSCRIBED_RECIPIENT",
    "AccountBlocked",
    "AccountInfo",
    "AccountType",
    "AiohttpTransport",
    "AuthenticationError",
    "Expired",
    "InvalidMessage",
    "MessageRejected",
    "MessageTooLong",
    "OutgoingSms",
    "PermanentError",
    "ProviderError",
    "ProviderName",
    "ProviderUnavailable",
    "ProviderWire",
    "RateLimited",
    "ReconciliationUnavailable",
    "RetryPolicy",
    "RetryableError",
    "SendResult",
    "UnknownOutcome",
    "nothing_was_sent",
]
