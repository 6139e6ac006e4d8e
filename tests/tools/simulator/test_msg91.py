"""The simulator's MSG91 Flow API: answers and their order, magic numbers, stored messages, delivery reports in both
shapes, and that an authkey or the report URL's token never shows."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from smsdispatch.tools.simulator import Msg91Account, RunningSimulator, running_simulator

from .conftest import MSG91_REPORT_TOKEN, ReportReceiver, make_config

AUTHKEY = "msg91-authkey-0123456789abcdef"
OTHER_AUTHKEY = "other-msg91-key-fedcba9876543210"
TEMPLATE = "tpl_otp-1"
OTHER_TEMPLATE = "tpl-other"
MOBILE = "919876543210"
HEADERS = {"authkey": AUTHKEY}
HEX_24 = re.compile(r"^[0-9a-f]{24}$")


def msg91_accounts() -> list[Msg91Account]:
    return [
        Msg91Account(authkey=AUTHKEY, template_ids=frozenset({TEMPLATE, "tpl-2"})),
        Msg91Account(authkey=OTHER_AUTHKEY, template_ids=frozenset({OTHER_TEMPLATE})),
    ]


def flow(mobile: str = MOBILE, **fields: Any) -> dict[str, Any]:
    """A Flow body as current clients send it; ``fields`` replace or add top-level keys."""
    return {
        "template_id": TEMPLATE,
        "short_url": "0",
        "sender": "SMSDSP",
        "recipients": [{"mobiles": mobile, "body": "your code is 1234"}],
        **fields,
    }


async def send(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    body: Any,
    *,
    headers: dict[str, str] = HEADERS,
    path: str = "/api/v5/flow/",
) -> tuple[int, Any]:
    """POST a Flow send; the answer's status and its JSON (or its text, when it is not JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    async with http.post(f"{sim.base_url}{path}", data=data, headers=all_headers) as response:
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, json.loads(text)
        return response.status, text


def simulating(**overrides: Any) -> Any:
    """A running simulator with the two MSG91 accounts and quick reports; ``overrides`` replace config fields."""
    settings: dict[str, Any] = {"msg91_accounts": msg91_accounts(), "msg91_report_delay_ms": 20, **overrides}
    return running_simulator(make_config(**settings))


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with simulating() as running:
        yield running


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``condition()`` holds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


@pytest.mark.parametrize("path", ["/api/v5/flow/", "/api/v5/flow"])
@pytest.mark.parametrize("template_key", ["template_id", "flow_id"])
@pytest.mark.asyncio
async def test_a_send_answers_success_with_a_24_hex_request_id(
    sim: RunningSimulator, http: aiohttp.ClientSession, path: str, template_key: str
) -> None:
    body = flow()
    body[template_key] = body.pop("template_id")

    status, answer = await send(http, sim, body, path=path)

    assert status == 200
    assert answer["type"] == "success"
    assert HEX_24.match(answer["message"])
    assert [m["request_id"] for m in sim.msg91_messages()] == [answer["message"]]


@pytest.mark.asyncio
async def test_a_stored_message_keeps_its_variables_and_is_priced_per_segment(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    recipient = {"mobiles": MOBILE, "body": "x" * 161, "name": "Asha"}

    _, answer = await send(http, sim, flow(recipients=[recipient], CRQID="req-42.a_b"))

    [stored] = sim.msg91_messages()
    assert (stored["request_id"], stored["template_id"], stored["sender"]) == (answer["message"], TEMPLATE, "SMSDSP")
    assert (stored["crqid"], stored["mobile"], stored["variables"]) == (
        "req-42.a_b",
        MOBILE,
        {"body": "x" * 161, "name": "Asha"},
    )
    assert (stored["segments"], stored["price"], stored["price_unit"]) == (2, "0.50", "INR")
    assert (stored["status"], stored["desc"], stored["accepted_then_500"], stored["report"]) == (
        "1",
        "Delivered",
        False,
        "none",
    )
    assert stored["account"] == AUTHKEY[:6] + "…"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stored["created_at"])


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        pytest.param(flow(), {"authkey": "wrong-key"}, "207", id="wrong-authkey"),
        pytest.param(flow(), {}, "207", id="no-authkey"),
        pytest.param(b"template_id=x", HEADERS, "101", id="not-json"),
        pytest.param([flow()], HEADERS, "101", id="not-an-object"),
        pytest.param(flow(recipients=[]), HEADERS, "101", id="no-recipients"),
        pytest.param(flow(recipients=[{"body": "hi"}]), HEADERS, "101", id="recipient-without-mobiles"),
        pytest.param({"recipients": [{"mobiles": MOBILE}]}, HEADERS, "101", id="no-template"),
        pytest.param(flow(template_id="tpl-unknown"), HEADERS, "102", id="unknown-template"),
        pytest.param(flow(template_id=OTHER_TEMPLATE), HEADERS, "102", id="another-accounts-template"),
        pytest.param(flow("+" + MOBILE), HEADERS, "202", id="plus-prefixed"),
        pytest.param(flow("9876543"), HEADERS, "202", id="seven-digits"),
        pytest.param(flow("9198765432101234"), HEADERS, "202", id="sixteen-digits"),
        pytest.param(flow("91987654321o"), HEADERS, "202", id="a-letter"),
        pytest.param(flow(CRQID="has space"), HEADERS, "101", id="crqid-charset"),
        pytest.param(flow(CRQID="c" * 81), HEADERS, "101", id="crqid-too-long"),
        pytest.param(flow("919876540202"), HEADERS, "202", id="magic-0202"),
        pytest.param(flow("919876540301"), HEADERS, "301", id="magic-0301-balance"),
        pytest.param(flow("919876540418"), HEADERS, "418", id="magic-0418-not-whitelisted"),
    ],
)
@pytest.mark.asyncio
async def test_refusals_are_type_error_on_http_200_and_store_nothing(
    sim: RunningSimulator, http: aiohttp.ClientSession, body: Any, headers: dict[str, str], code: str
) -> None:
    status, answer = await send(http, sim, body, headers=headers)

    assert status == 200
    assert answer["type"] == "error"
    assert answer["code"] == code
    assert isinstance(answer["message"], str)
    assert answer["message"]
    assert sim.msg91_messages() == []


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        pytest.param({"no": "recipients"}, {"authkey": "wrong-key"}, "207", id="authkey-before-body"),
        pytest.param(flow("+" + MOBILE, template_id="nope"), HEADERS, "102", id="template-before-mobile"),
        pytest.param(flow("+" + MOBILE, CRQID="bad crqid"), HEADERS, "202", id="mobile-before-crqid"),
        pytest.param(flow("919876540301", CRQID="bad crqid"), HEADERS, "101", id="crqid-before-magic"),
    ],
)
@pytest.mark.asyncio
async def test_checks_answer_in_msg91s_order(
    sim: RunningSimulator, http: aiohttp.ClientSession, body: Any, headers: dict[str, str], code: str
) -> None:
    _, answer = await send(http, sim, body, headers=headers)

    assert answer["code"] == code


@pytest.mark.asyncio
async def test_a_form_encoded_body_is_refused_as_a_missing_parameter(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{sim.base_url}/api/v5/flow/", data={"template_id": TEMPLATE}, headers=HEADERS) as r:
        answer = await r.json()

    assert (r.status, answer["type"], answer["code"]) == (200, "error", "101")


@pytest.mark.asyncio
async def test_magic_0429_answers_http_429_and_stores_nothing(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, answer = await send(http, sim, flow("919876540429"))

    assert (status, answer) == (429, {"type": "error", "message": "too many requests", "code": "429"})
    assert sim.msg91_messages() == []


@pytest.mark.asyncio
async def test_magic_0500_answers_http_500_in_plain_text_after_storing_the_message(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, answer = await send(http, sim, flow("919876540500"))

    [stored] = sim.msg91_messages()
    assert status == 500
    assert isinstance(answer, str)
    assert (stored["mobile"], stored["accepted_then_500"]) == ("919876540500", True)


@pytest.mark.asyncio
async def test_magic_0408_keeps_the_send_waiting_after_storing_the_message(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await send(http, sim, flow("919876540408"))

    [stored] = sim.msg91_messages()
    assert (stored["mobile"], stored["accepted_then_500"]) == ("919876540408", False)


@pytest.mark.asyncio
async def test_several_recipients_share_one_request_id_and_get_a_message_each(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    recipients = [{"mobiles": MOBILE, "body": "a"}, {"mobiles": "919876540017", "body": "b"}]

    _, answer = await send(http, sim, flow(recipients=recipients))

    stored = sim.msg91_messages()
    assert [(m["request_id"], m["mobile"], m["status"]) for m in stored] == [
        (answer["message"], MOBILE, "1"),
        (answer["message"], "919876540017", "17"),
    ]


@pytest.mark.parametrize(
    ("mobile", "status", "desc"),
    [
        (MOBILE, "1", "Delivered"),
        ("919876540002", "2", "Failed"),
        ("919876540009", "9", "NDNC"),
        ("919876540016", "16", "Rejected"),
        ("919876540017", "17", "Blocked"),
        ("919876540025", "25", "Rejected"),
    ],
)
@pytest.mark.asyncio
async def test_a_v3_report_carries_the_magic_status_and_echoes_the_crqid(
    http: aiohttp.ClientSession, reports: ReportReceiver, mobile: str, status: str, desc: str
) -> None:
    async with simulating(msg91_report_url=reports.url) as sim:
        _, answer = await send(http, sim, flow(mobile, CRQID="req-7"))
        [report] = await reports.wait_for(1)

    assert set(report) == {"date", "number", "senderId", "requestId", "CRQID", "status", "desc", "credit", "currency"}
    assert (report["number"], report["senderId"], report["requestId"]) == (mobile, "SMSDSP", answer["message"])
    assert (report["CRQID"], report["status"], report["desc"]) == ("req-7", status, desc)
    assert (report["credit"], report["currency"]) == ("0.25", "INR")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", report["date"])
    assert reports.content_types == ["application/json"]


@pytest.mark.parametrize(
    ("mobile", "status", "reason"),
    [(MOBILE, "1", ""), ("919876540016", "16", "Rejected"), ("919876540002", "2", "Failed")],
)
@pytest.mark.asyncio
async def test_a_new_shape_report_carries_the_magic_status_and_echoes_the_crqid(
    http: aiohttp.ClientSession, reports: ReportReceiver, mobile: str, status: str, reason: str
) -> None:
    async with simulating(msg91_report_url=reports.url, msg91_report_shape="new") as sim:
        _, answer = await send(
            http, sim, flow(mobile, CRQID="req-8", recipients=[{"mobiles": mobile, "body": "अ" * 71}])
        )
        [report] = await reports.wait_for(1)
        [stored] = sim.msg91_messages()

    assert (report["requestId"], report["telNum"], report["CRQID"]) == (answer["message"], mobile, "req-8")
    assert (report["status"], report["failureReason"], report["smsLength"], report["credit"]) == (
        status,
        reason,
        2,
        "0.50",
    )
    assert isinstance(report["requestedAt"], int)
    assert 0 <= report["deliveryTime"] - report["requestedAt"] < 5_000
    assert stored["status"] == status


@pytest.mark.asyncio
async def test_a_report_without_crqid_or_sender_sends_empty_strings(
    http: aiohttp.ClientSession, reports: ReportReceiver
) -> None:
    body = flow()
    del body["sender"]
    async with simulating(msg91_report_url=reports.url) as sim:
        await send(http, sim, body)
        [report] = await reports.wait_for(1)

    assert (report["CRQID"], report["senderId"]) == ("", "")


@pytest.mark.asyncio
async def test_a_failed_report_is_retried_once(http: aiohttp.ClientSession, reports: ReportReceiver) -> None:
    reports.statuses = [503]
    async with simulating(msg91_report_url=reports.url) as sim:
        await send(http, sim, flow())
        first, second = await reports.wait_for(2)
        await until(lambda: sim.pending_msg91_reports == 0)
        [stored] = sim.msg91_messages()

    assert first == second
    assert stored["report"] == "sent"


@pytest.mark.asyncio
async def test_undelivered_rate_fails_delivered_messages_but_magic_statuses_stay(
    http: aiohttp.ClientSession,
) -> None:
    async with simulating(msg91_undelivered_rate=1.0) as sim:
        await send(http, sim, flow(recipients=[{"mobiles": MOBILE}, {"mobiles": "919876540009"}]))

        assert [m["status"] for m in sim.msg91_messages()] == ["2", "9"]


@pytest.mark.asyncio
async def test_the_listing_never_shows_the_authkey(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    await send(http, sim, flow())

    async with http.get(f"{sim.base_url}/_sim/msg91/messages") as response:
        text = await response.text()

    assert response.status == 200
    assert len(json.loads(text)) == 1
    assert AUTHKEY not in text
    assert AUTHKEY[:6] in text


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/msg91/report/{MSG91_REPORT_TOKEN}"


@pytest.mark.asyncio
async def test_the_log_never_shows_an_authkey_or_the_report_token(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with simulating(msg91_report_url=_closed_port_url()) as sim:
        await send(http, sim, flow())
        await send(http, sim, flow(), headers={"authkey": AUTHKEY + "x"})
        await until(lambda: sim.pending_msg91_reports == 0)
        [stored] = sim.msg91_messages()

    assert stored["report"] == "failed"
    assert "failed twice" in caplog.text  # the failing report was logged...
    assert AUTHKEY not in caplog.text  # ...without a secret
    assert MSG91_REPORT_TOKEN not in caplog.text
