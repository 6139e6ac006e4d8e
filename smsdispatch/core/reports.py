"""MSG91's delivery reports in, ``SmsStatus`` records out on ``sms.status``.

MSG91 posts every report of the platform's account to one URL, set once in its panel, and signs nothing; the
worker serves it at ``POST /msg91/report/{token}`` and accepts a request only when ``token`` equals
``SMSDISPATCH_MSG91_REPORT_TOKEN`` (compared in constant time). Without a configured token the endpoint does
not exist (404); a wrong token is 403; neither publishes anything.

Each report names its message by MSG91's request id and by the ``CRQID`` the dispatcher sent, which holds the
tenant and the request id (:func:`~smsdispatch.adapters.msg91.crqid_for`). A report whose ``CRQID`` is missing
or not ours is matched by MSG91's request id alone, looked up in the dispatch log (MSG91's ids are the platform
account's, unique across tenants); one that matches neither is skipped and said so in the log.

The records go through the same forward-only rules as Twilio's receipts (``adapters/storage/upserts.py``): a
row only takes a status of a higher rank, and only from a receipt naming the SID it already holds, so a report
naming one tenant's request with another message's id cannot change that tenant's row.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from smsdispatch.adapters.msg91 import Msg91Report, ReportError, parse_crqid, parse_reports, status_of
from smsdispatch.adapters.storage import StorageError
from smsdispatch.contract import SmsStatus

log = logging.getLogger("smsdispatch.reports")

#: The tenant whose message carries an MSG91 request id, from the dispatch log; None when no row has it.
TenantOfMessage = Callable[[str], Awaitable[str | None]]


class ReportRefused(Exception):
    """The request is not an MSG91 report for this platform; answer ``status``, publish nothing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class ReadReports:
    """What a report request holds: the records to publish, and how many reports matched no message."""

    statuses: Sequence[SmsStatus]
    unmatched: int


def require_token(expected: SecretStr | None, given: str) -> None:
    """Raise :class:`ReportRefused` unless ``given`` is the configured report token."""
    if expected is None:
        raise ReportRefused(404, "no MSG91 report endpoint is configured (SMSDISPATCH_MSG91_REPORT_TOKEN)")
    if not hmac.compare_digest(expected.get_secret_value().encode(), given.encode()):
        raise ReportRefused(403, "wrong report token")


async def statuses_from_reports(body: bytes, content_type: str, tenant_of: TenantOfMessage) -> ReadReports:
    """The ``SmsStatus`` records of every report in ``body``; :class:`ReportRefused` (400) for a body that
    holds none."""
    try:
        reports = parse_reports(body, content_type)
    except ReportError as error:
        raise ReportRefused(400, str(error)) from None
    statuses: list[SmsStatus] = []
    for report in reports:
        status = await _status_of(report, tenant_of)
        if status is None:
            log.warning(
                "an MSG91 report matches no message sent through this platform (request id %r)", report.request_id
            )
        else:
            statuses.append(status)
    return ReadReports(statuses, unmatched=len(reports) - len(statuses))


async def _status_of(report: Msg91Report, tenant_of: TenantOfMessage) -> SmsStatus | None:
    ours = parse_crqid(report.crqid)
    if ours is not None:
        tenant_id, request_id = ours
    else:
        try:
            found = await tenant_of(report.request_id)
        except StorageError as error:  # answered 503: MSG91 may send it again
            raise ReportRefused(503, f"the dispatch log cannot be read now: {error}") from None
        if found is None:
            return None
        tenant_id, request_id = found, None
    delivered = status_of(report.status_code) == "delivered"
    return SmsStatus(
        tenant_id=tenant_id,
        request_id=request_id,
        provider_message_id=report.request_id,
        status=status_of(report.status_code),
        provider_code=None if delivered else _fits(report.status_code),
        raw_dlr_done_date=report.done_at,
    )


def _fits(code: int | None) -> int | None:
    """MSG91's code when it fits the dispatch log's integer column."""
    return code if code is not None and 0 <= code < 10**9 else None
