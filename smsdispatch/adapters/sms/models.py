"""What goes into a provider and what comes out of it: plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from smsdispatch.contract.segments import Encoding

AccountType = Literal["Trial", "Full"]
#: The providers the worker sends through: a tenant's own Twilio account, or the platform's default, MSG91.
ProviderName = Literal["twilio", "msg91"]


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS to send: where Twilio reports its delivery (``status_callback``), and when it goes stale
    (``expires_at``: not sent after it, and Twilio's ``ValidityPeriod`` is set to the seconds left).
    ``reference`` is the sender's own id for it, echoed in delivery reports where the provider supports one
    (MSG91's ``CRQID``)."""

    to: str
    body: str
    status_callback: str | None = None
    expires_at: datetime | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """Twilio accepted the message (or reconciliation found that it had).

    ``status`` is Twilio's own word for it (``queued``, or ``accepted`` through a Messaging Service; later
    states when found by reconciliation). ``segments`` and ``encoding`` are computed locally, because Twilio
    reports ``num_segments`` as ``"0"`` for Messaging Service sends. ``attempts`` counts HTTP requests.
    """

    message_id: str
    status: str
    to: str
    segments: int
    encoding: Encoding
    attempts: int
    provider: ProviderName = "twilio"
    date_created: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What ``verify()`` learnt about a tenant's credentials.

    Test credentials cannot fetch the account (Twilio answers 403 / 20008, which proves they are valid test
    credentials), so for them ``status``, ``account_type`` and ``friendly_name`` are unknown.
    """

    verified: bool
    test_credentials: bool = False
    account_type: AccountType | None = None
    status: str | None = None
    friendly_name: str | None = None
    reason: str | None = None
