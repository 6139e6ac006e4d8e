"""Reading MSG91's delivery reports, and the CRQID that ties one to its tenant and request."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from smsdispatch.adapters.msg91 import ReportError, crqid_for, parse_crqid, parse_reports, status_of


def test_the_crqid_names_the_tenant_then_the_request() -> None:
    crqid = crqid_for("acme", "order-17.v2_x")

    assert crqid == "04acmeorder-17.v2_x"
    assert parse_crqid(crqid) == ("acme", "order-17.v2_x")


def test_a_request_id_msg91_cannot_carry_is_left_out_of_the_crqid() -> None:
    assert crqid_for("acme", "has space") == "04acme"
    assert crqid_for("acme", "x" * 80) == "04acme"
    assert parse_crqid("04acme") == ("acme", None)


@pytest.mark.parametrize("crqid", [None, "", "ab", "xxacme", "10acme", "04ac/e-1"])
def test_a_crqid_not_made_by_smsdispatch_is_not_read(crqid: str | None) -> None:
    assert parse_crqid(crqid) is None


def test_a_v3_report_is_read() -> None:
    body = {
        "date": "2026-12-08 10:00:01",
        "number": "919876543210",
        "requestId": "5762846b4f8d285d378b4567",
        "CRQID": "04acmereq-1",
        "status": "1",
        "desc": "DELIVERED",
        "credit": "0.25",
    }

    [report] = parse_reports(json.dumps(body).encode())

    assert (report.request_id, report.crqid, report.status_code) == ("5762846b4f8d285d378b4567", "04acmereq-1", 1)
    assert (report.number, report.credit, report.done_at) == ("919876543210", "0.25", "2026-12-08 10:00:01")


def test_a_webhook_new_report_is_read() -> None:
    body = {
        "requestId": "5762846b4f8d285d378b4567",
        "status": 16,
        "telNum": "919876540016",
        "CRQID": "04acmereq-2",
        "failureReason": "Rejected",
        "deliveryTime": "2026-12-08T10:00:01Z",
    }

    [report] = parse_reports(json.dumps(body).encode())

    assert (report.status_code, report.number, report.description) == (16, "919876540016", "Rejected")
    assert report.done_at == "2026-12-08T10:00:01Z"


def test_a_v2_form_report_yields_one_report_per_number() -> None:
    data = [{"requestId": "r1", "report": [{"number": "91987", "status": "1", "CRQID": "04acmea"}, {"status": "2"}]}]
    body = urlencode({"data": json.dumps(data)}).encode()

    reports = parse_reports(body, "application/x-www-form-urlencoded")

    assert [(r.request_id, r.status_code, r.crqid) for r in reports] == [("r1", 1, "04acmea"), ("r1", 2, None)]


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[]", b'{"status": "1"}', b'"text"'])
def test_a_body_without_a_report_is_refused(body: bytes) -> None:
    with pytest.raises(ReportError):
        parse_reports(body)


@pytest.mark.parametrize(
    ("code", "status"), [(1, "delivered"), (2, "failed"), (9, "failed"), (17, "failed"), (None, "failed")]
)
def test_only_code_1_is_delivered(code: int | None, status: str) -> None:
    assert status_of(code) == status
