"""MSG91's delivery reports become sms.status records: the token guards them, the CRQID routes them."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from smsdispatch.adapters.storage import StorageUnavailable
from smsdispatch.core.reports import ReportRefused, require_token, statuses_from_reports

TOKEN = SecretStr("rpt_4f1c2a9e7b")


def report(**fields: object) -> bytes:
    return json.dumps({"requestId": "5762846b4f8d285d378b4567", "status": "1", **fields}).encode()


async def nobody(_sid: str) -> str | None:
    return None


def test_the_configured_token_is_accepted() -> None:
    require_token(TOKEN, "rpt_4f1c2a9e7b")


@pytest.mark.parametrize("given", ["", "rpt_4f1c2a9e7", "rpt_4f1c2a9e7bX", "RPT_4F1C2A9E7B"])
def test_a_wrong_token_is_403(given: str) -> None:
    with pytest.raises(ReportRefused) as caught:
        require_token(TOKEN, given)

    assert caught.value.status == 403


def test_without_a_configured_token_there_is_no_endpoint() -> None:
    with pytest.raises(ReportRefused) as caught:
        require_token(None, "anything")

    assert caught.value.status == 404


@pytest.mark.asyncio
async def test_a_report_is_routed_by_its_crqid_to_the_tenant_and_request() -> None:
    read = await statuses_from_reports(
        report(CRQID="04acmereq-1", date="2026-12-08 10:00:01"), "application/json", nobody
    )

    [status] = read.statuses
    assert (status.tenant_id, status.request_id, status.provider_message_id) == (
        "acme",
        "req-1",
        "5762846b4f8d285d378b4567",
    )
    assert (status.status, status.provider_code, status.raw_dlr_done_date) == ("delivered", None, "2026-12-08 10:00:01")
    assert read.unmatched == 0


@pytest.mark.asyncio
async def test_a_failure_report_keeps_msg91s_code() -> None:
    read = await statuses_from_reports(report(CRQID="04acmereq-1", status="17"), "application/json", nobody)

    [status] = read.statuses
    assert (status.status, status.provider_code) == ("failed", 17)


@pytest.mark.asyncio
async def test_a_report_without_crqid_is_matched_by_msg91s_request_id() -> None:
    asked: list[str] = []

    async def from_log(sid: str) -> str | None:
        asked.append(sid)
        return "globex"

    read = await statuses_from_reports(report(), "application/json", from_log)

    [status] = read.statuses
    assert (status.tenant_id, status.request_id) == ("globex", None)  # parked until the row with that SID exists
    assert asked == ["5762846b4f8d285d378b4567"]


@pytest.mark.asyncio
async def test_a_report_matching_no_message_is_counted_and_not_published() -> None:
    read = await statuses_from_reports(report(CRQID="not-ours"), "application/json", nobody)

    assert (list(read.statuses), read.unmatched) == ([], 1)


@pytest.mark.asyncio
async def test_a_log_that_cannot_be_read_is_503_so_msg91_may_send_again() -> None:
    async def log_down(_sid: str) -> str | None:
        raise StorageUnavailable("the database is unavailable")

    with pytest.raises(ReportRefused) as caught:
        await statuses_from_reports(report(), "application/json", log_down)

    assert caught.value.status == 503


@pytest.mark.asyncio
async def test_a_body_holding_no_report_is_400() -> None:
    with pytest.raises(ReportRefused) as caught:
        await statuses_from_reports(b"<xml/>", "application/json", nobody)

    assert caught.value.status == 400
