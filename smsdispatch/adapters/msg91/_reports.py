"""MSG91's delivery reports, and the ``CRQID`` that ties one to the request it reports on.

MSG91 sets the report URL once in its panel (not per request) and does not sign reports; the worker's endpoint
guards itself with a secret token in its path. A report body is one of:

* v3: a flat JSON object ``{date, number, senderId, requestId, CRQID, status, desc, credit, ...}`` (or a list);
* "Webhook (New)": JSON, one per number, ``{requestId, requestedAt, status, deliveryTime, telNum, CRQID,
  failureReason, smsLength, credit, ...}``;
* v2: form-encoded, ``data`` holding a JSON array of ``{requestId, report: [{number, status, desc, CRQID}]}``.

Status codes (docs/contract.md): 1 delivered, 2 failed, 9 NDNC, 16 and 25 rejected, 17 blocked; any other code is
kept as failed with its code.

``CRQID`` is the request's own id, prefixed by its tenant so that a report names both (the endpoint is one for
every tenant): two digits of the tenant id's length, the tenant id, then the request id when it fits MSG91's
``CRQID`` (letters, digits, ``_ . -``, at most 80 characters in all). A request id that does not fit is left out;
the report is then matched by the tenant and MSG91's request id, which the dispatched outcome carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

DELIVERED = 1
MAX_CRQID = 80
_CRQID_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
_TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ReportError(ValueError):
    """A body that is not a delivery report; the message says why in one sentence."""


@dataclass(frozen=True)
class Msg91Report:
    """One number's delivery report. ``request_id`` is MSG91's (the dispatched outcome's ``provider_message_id``);
    ``credit`` is the price as MSG91 wrote it."""

    request_id: str
    crqid: str | None
    status_code: int | None
    description: str | None = None
    number: str | None = None
    credit: str | None = None
    currency: str | None = None
    done_at: str | None = None


def status_of(code: int | None) -> str:
    """The ``sms.status`` status of an MSG91 code: ``delivered`` for 1, ``failed`` for anything else."""
    return "delivered" if code == DELIVERED else "failed"


def crqid_for(tenant_id: str, request_id: str) -> str:
    """The ``CRQID`` a request is sent with (see the module)."""
    prefix = f"{len(tenant_id):02d}{tenant_id}"
    fits = _CRQID_SAFE.match(request_id) is not None and len(prefix) + len(request_id) <= MAX_CRQID
    return prefix + request_id if fits else prefix


def parse_crqid(crqid: str | None) -> tuple[str, str | None] | None:
    """(tenant_id, request_id or None) of a ``CRQID`` made by :func:`crqid_for`; None for anything else."""
    if not crqid or len(crqid) < 3 or not crqid[:2].isdigit():
        return None
    length = int(crqid[:2])
    tenant = crqid[2 : 2 + length]
    if len(tenant) != length or not _TENANT.match(tenant):
        return None
    return tenant, crqid[2 + length :] or None


def parse_reports(body: bytes, content_type: str = "application/json") -> list[Msg91Report]:
    """Every report in a report request's body. Raises :class:`ReportError` for a body that holds none."""
    if "x-www-form-urlencoded" in content_type:
        data = parse_qs(body.decode("utf-8", "replace")).get("data")
        if not data:
            raise ReportError("a form-encoded report has no data field")
        document: Any = _loads(data[0].encode())
    else:
        document = _loads(body)
    items = document if isinstance(document, list) else [document]
    reports = [report for item in items for report in _from(item)]
    if not reports:
        raise ReportError("the body holds no report with a requestId")
    return reports


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ReportError("the body is not JSON") from None


def _from(item: Any) -> Iterable[Msg91Report]:
    if not isinstance(item, Mapping):
        return []
    request_id = _text(item.get("requestId"))
    if request_id is None:
        return []
    nested = item.get("report")
    if isinstance(nested, list):  # v2: one entry per number under the request
        return [_one(request_id, entry) for entry in nested if isinstance(entry, Mapping)]
    return [_one(request_id, item)]


def _one(request_id: str, item: Mapping[str, Any]) -> Msg91Report:
    status = _text(item.get("status"))
    return Msg91Report(
        request_id=request_id,
        crqid=_text(item.get("CRQID")),
        status_code=int(status) if status is not None and status.isdigit() else None,
        description=_text(item.get("desc")) or _text(item.get("failureReason")),
        number=_text(item.get("number")) or _text(item.get("telNum")),
        credit=_text(item.get("credit")),
        currency=_text(item.get("currency")),
        done_at=_text(item.get("date")) or _text(item.get("deliveryTime")),
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return value.strip() or None if isinstance(value, str) else None
