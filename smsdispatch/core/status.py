"""The status receiver: Twilio's delivery callbacks in, ``SmsStatus`` records out on ``sms.status``.

Twilio POSTs to ``{SMSDISPATCH_PUBLIC_URL}/twilio/status/{tenant_id}?request_id=…`` (the dispatcher puts the
ids in the URL it gives Twilio). A callback is accepted only with a valid ``X-Twilio-Signature`` computed with
the tenant's auth token over the public URL exactly as Twilio called it; anything else gets 403 and is not
published. A tenant registered with an API key and no auth token has nothing to check signatures with, so
the dispatcher asks Twilio for no callbacks for it (register the auth token too to get delivery receipts).

The worker checks callbacks against the :class:`~smsdispatch.core.tenant_view.TenantView`, which holds every
tenant of ``sms.tenants``, not only those of the worker's own partitions: behind a load balancer a callback
reaches any worker, and every worker can verify it. A tenant the view does not hold as verified (yet) is waited
for, a bounded while, before the callback is refused with 404 (see that module for the bound and its limits).
"""

from __future__ import annotations

from collections.abc import Mapping

from smsdispatch.adapters.twilio.signature import is_valid_signature
from smsdispatch.contract import ErrorInfo, SmsStatus
from smsdispatch.core.tenants import ReadyTenant


class CallbackRejected(Exception):
    """The callback is not from Twilio for this tenant (or is malformed); answer ``status``, publish nothing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def status_from_callback(
    tenant: ReadyTenant | ErrorInfo,
    tenant_id: str,
    request_id: str | None,
    url: str,
    form: Mapping[str, str],
    signature: str | None,
) -> SmsStatus:
    """Check a callback against the tenant it names (as looked up by the caller: every worker holds every
    tenant) and turn it into the record to publish, or raise :class:`CallbackRejected`."""
    require_signed(tenant, tenant_id, url, form, signature)
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        raise CallbackRejected(400, "MessageSid and MessageStatus are required")
    return SmsStatus(
        tenant_id=tenant_id,
        request_id=request_id or None,
        provider_message_id=sid,
        status=status,
        provider_code=_provider_code(form.get("ErrorCode")),
        raw_dlr_done_date=form.get("RawDlrDoneDate"),
    )


def require_signed(
    tenant: ReadyTenant | ErrorInfo, tenant_id: str, url: str, form: Mapping[str, str], signature: str | None
) -> ReadyTenant:
    """The tenant, once the request is proven to come from Twilio for it; else :class:`CallbackRejected`."""
    if not isinstance(tenant, ReadyTenant):
        raise CallbackRejected(404, f"no verified tenant {tenant_id!r}")
    if tenant.twilio is None:  # it sends through the platform's default: Twilio has nothing to tell about it
        raise CallbackRejected(404, f"tenant {tenant_id!r} does not send through a Twilio account")
    token = tenant.twilio.signing_token
    if token is None or signature is None or not is_valid_signature(token, url, form, signature):
        raise CallbackRejected(403, "missing or invalid X-Twilio-Signature")
    return tenant


def _provider_code(error_code: str | None) -> int | None:
    """Twilio's numeric ErrorCode, or None. ``str.isdigit`` alone passes "²", which int() then refuses; and a
    code must fit the dispatch log's integer column, so only up to 9 ASCII digits count."""
    if error_code and error_code.isascii() and error_code.isdigit() and len(error_code) <= 9:
        return int(error_code)
    return None
