"""Twilio's incoming-message webhook: a recipient's STOP puts them on the tenant's suppression list, START
takes them off.

Twilio POSTs every message a recipient sends to one of the tenant's numbers to the webhook configured on that
number (or Messaging Service): ``{SMSDISPATCH_PUBLIC_URL}/twilio/inbound/{tenant_id}``. The request is checked
exactly as a status callback is (``X-Twilio-Signature`` with the tenant's auth token; any worker can check it,
since every worker holds every tenant). Twilio marks opt-out keywords with ``OptOutType`` (``STOP``, ``START``,
``HELP``), with its default keywords and with Advanced Opt-Out's own; where it is absent, the default keywords
in the body decide, so a number configured without opt-out handling still works. Any other message changes
nothing. The answer is always an empty TwiML ``<Response/>``: Twilio itself sends the confirmation reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from smsdispatch.contract import ErrorInfo
from smsdispatch.contract._fields import PhoneNumber
from smsdispatch.core.status import CallbackRejected, require_signed
from smsdispatch.core.tenants import ReadyTenant

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

#: Twilio's default opt-out and opt-in keywords (matched on the whole trimmed body, case-insensitively).
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

_NUMBER: TypeAdapter[str] = TypeAdapter(PhoneNumber)


@dataclass(frozen=True, slots=True)
class OptOutChange:
    """The recipient ``number`` opted out of (``opted_out``) or back into the tenant's messages."""

    tenant_id: str
    number: str
    opted_out: bool


def opt_out_from_inbound(
    tenant: ReadyTenant | ErrorInfo, tenant_id: str, url: str, form: Mapping[str, str], signature: str | None
) -> OptOutChange | None:
    """The change an inbound message makes to the tenant's list (None: it is no opt-out keyword), once it is
    proven to come from Twilio for this tenant; else :class:`CallbackRejected`."""
    require_signed(tenant, tenant_id, url, form, signature)
    kind = (form.get("OptOutType") or "").strip().upper() or _keyword(form.get("Body") or "")
    if kind not in ("STOP", "START"):
        return None
    try:
        number = _NUMBER.validate_python(form.get("From") or "")
    except ValidationError:
        raise CallbackRejected(400, "From must be the sender's E.164 number") from None
    return OptOutChange(tenant_id, number, opted_out=kind == "STOP")


def _keyword(body: str) -> str:
    word = body.strip().upper()
    if word in STOP_KEYWORDS:
        return "STOP"
    if word in START_KEYWORDS:
        return "START"
    return ""
