"""What can go wrong talking to an SMS provider, sorted by what the caller may do about it (the examples are
Twilio's; MSG91's adapter raises the same classes).

The hierarchy (as httpx draws its own in ``_exceptions.py``)::

    ProviderError                       every error below; never carries a credential in its message
     ├── PermanentError                 retryable=False: the same request gets the same answer
     │    ├── InvalidMessage            invalid_request: refused locally, before any HTTP call
     │    │    └── MessageTooLong       the body is over 1600 characters (Twilio would say 21617)
     │    ├── AuthenticationError       provider_auth_failed: 401 or 403 (20003, 20403, ...)
     │    ├── MessageRejected           provider_rejected: a 4xx carrying a Twilio code (21211, 21610, ...),
     │    │                             or a 2xx response that carries one; ``recipient_opted_out`` for 21610
     │    ├── AccountBlocked            provider_unavailable: the provider refuses the platform's account for now
     │    │                             (MSG91: no balance, account expired); an immediate retry would fail
     │    │                             too, a resend once it is put right may not (``resend_may_help``)
     │    └── Expired                   expired: the message's ``expires_at`` passed before Twilio accepted
     │                                  it (checked before every attempt, so never after one that may have)
     ├── RetryableError                 retryable=True: Twilio processed nothing, sending again is safe
     │    ├── RateLimited               rate_limited: 429 / 20429 (``retry_after`` when Twilio said)
     │    └── ProviderUnavailable       provider_unavailable: no connection could be made, nothing was sent
     ├── UnknownOutcome                 outcome_unknown: a 5xx, a read timeout or a connection lost after the
     │                                  create was sent. Twilio may have accepted the SMS and create has no
     │                                  idempotency key, so it is never retried blindly; ``to``, ``body``
     │                                  and ``sent_after`` are what ``TwilioProvider.find_sent`` needs
     └── ReconciliationUnavailable      outcome_unknown: these credentials cannot list messages (test
                                        credentials answer 403 / 20008), so an unknown outcome stays unknown

Retry logic reads :attr:`ProviderError.retryable` and nothing else (never the message text), as aiokafka's
``RetriableError`` works. :attr:`ProviderError.error_code` is the docs/contract.md ``SmsFailed.error.code``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from smsdispatch.contract import ErrorCode

#: Twilio's code for "attempt to send to unsubscribed recipient" (the recipient replied STOP).
UNSUBSCRIBED_RECIPIENT = 21610


class ProviderError(Exception):
    """Base of every error a provider adapter raises.

    ``provider_code`` is the provider's numeric error code when it gave one, ``http_status`` the HTTP status when a
    response arrived, ``attempts`` how many HTTP requests were made before giving up (0 when none was).
    """

    retryable: ClassVar[bool] = False
    #: Whether a later resend (a replay) may succeed where this attempt failed: every retryable error, and a few
    #: permanent ones that depend on the account rather than on the message (``SmsFailed.error.retryable``).
    resend_may_help: ClassVar[bool] = False
    error_code: ClassVar[ErrorCode] = ErrorCode.PROVIDER_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        provider_code: int | None = None,
        http_status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider_code = provider_code
        self.http_status = http_status
        self.attempts = attempts

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider_code={self.provider_code!r}, "
            f"http_status={self.http_status!r}, attempts={self.attempts!r})"
        )


class PermanentError(ProviderError):
    """Sending the same request again would get the same answer."""

    retryable = False
    error_code = ErrorCode.PROVIDER_REJECTED


class InvalidMessage(PermanentError):
    """The message breaks a rule Twilio enforces; found locally, so no request was made."""

    error_code = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message, attempts=0)


class MessageTooLong(InvalidMessage):
    """The body is longer than Twilio's 1600-character limit."""


class AuthenticationError(PermanentError):
    """Twilio refused these credentials (401), or refused them this resource (403)."""

    error_code = ErrorCode.PROVIDER_AUTH_FAILED


class MessageRejected(PermanentError):
    """Twilio refused the request with an error code (21211 invalid To, 21610 unsubscribed, ...)."""

    error_code = ErrorCode.PROVIDER_REJECTED

    @property
    def recipient_opted_out(self) -> bool:
        """Twilio's 21610: the recipient replied STOP to this sender, so every later send fails the same way."""
        return self.provider_code == UNSUBSCRIBED_RECIPIENT


class AccountBlocked(PermanentError):
    """The provider refused the platform's account itself for now (MSG91 301 insufficient balance, 302/303 account
    expired or banned, 505 demo account): nothing was sent. Not retried here; a resend once the account is put
    right may succeed."""

    resend_may_help = True
    error_code = ErrorCode.PROVIDER_UNAVAILABLE


class Expired(PermanentError):
    """The message went stale before Twilio took it: nothing was sent, and sending it later makes no sense."""

    error_code = ErrorCode.EXPIRED


class RetryableError(ProviderError):
    """Twilio processed nothing: the request can be sent again without risk of a duplicate SMS."""

    retryable = True
    resend_may_help = True


class RateLimited(RetryableError):
    """Twilio answered 429: too many requests in flight for this account."""

    error_code = ErrorCode.RATE_LIMITED

    def __init__(
        self,
        message: str,
        *,
        provider_code: int | None = None,
        http_status: int | None = 429,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider_code=provider_code, http_status=http_status, attempts=attempts)
        self.retry_after = retry_after


class ProviderUnavailable(RetryableError):
    """No answer could be had, and nothing that could send an SMS reached Twilio."""

    error_code = ErrorCode.PROVIDER_UNAVAILABLE


class UnknownOutcome(ProviderError):
    """The create request was sent but its answer was lost or was a 5xx: the SMS may exist.

    Carries what reconciliation needs: ``to`` and ``body`` as sent, and ``sent_after``, a UTC instant taken
    before the first attempt, so any message Twilio created for this call has ``date_created`` after it.
    """

    retryable = False
    error_code = ErrorCode.OUTCOME_UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        to: str,
        body: str,
        sent_after: datetime,
        provider_code: int | None = None,
        http_status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, provider_code=provider_code, http_status=http_status, attempts=attempts)
        self.to = to
        self.body = body
        self.sent_after = sent_after


class ReconciliationUnavailable(ProviderError):
    """Messages cannot be listed with these credentials (test credentials get 403 / 20008)."""

    retryable = False
    error_code = ErrorCode.OUTCOME_UNKNOWN
