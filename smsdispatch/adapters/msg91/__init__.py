"""MSG91, the platform's default SMS provider: its Flow API (v5) for sending, and its delivery reports.

Usage::

    async with Msg91Http(base_url) as http:               # one per process
        provider = Msg91Provider(account, http)           # the platform's account (SMSDISPATCH_MSG91_*)
        result = await provider.send(OutgoingSms(to="+919876543210", body="Hello", reference=crqid))

What the adapter relies on, and what about MSG91 is unconfirmed, is in docs/reference/msg91.md. It imports the
contract and the providers' shared base (``adapters.sms``) only.
"""

from smsdispatch.adapters.msg91._provider import Msg91Account, Msg91Provider, Msg91Template
from smsdispatch.adapters.msg91._reports import (
    DELIVERED,
    Msg91Report,
    ReportError,
    crqid_for,
    parse_crqid,
    parse_reports,
    status_of,
)
from smsdispatch.adapters.msg91._wire import DEFAULT_BASE_URL, Msg91Http

__all__ = [
    "DEFAULT_BASE_URL",
    "DELIVERED",
    "Msg91Account",
    "Msg91Http",
    "Msg91Provider",
    "Msg91Report",
    "Msg91Template",
    "ReportError",
    "crqid_for",
    "parse_crqid",
    "parse_reports",
    "status_of",
]
