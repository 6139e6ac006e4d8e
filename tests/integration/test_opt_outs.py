"""Opt-outs end to end, with two workers: Twilio's 21610, a recipient's STOP and START through the inbound
webhook on either worker, the operator's verbs, and the list surviving a restart. Requests to an opted-out
number fail ``recipient_opted_out`` without reaching the simulator; another tenant's messages are untouched."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from smsdispatch.adapters.twilio.signature import SIGNATURE_HEADER, compute_signature
from smsdispatch.client import current_suppressions
from smsdispatch.contract import ErrorCode, Outcome, SmsDispatched, SmsFailed, SmsRequested
from smsdispatch.tools.simulator import random_account_sid
from smsdispatch.tools.testing.recipients import reply_from_recipient
from tests.integration.conftest import LIVE_NUMBER, Stack, running_stack
from tests.integration.outcomes import row_when, send_and_collect, simulator_messages

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

OTHER_ACCOUNT = (random_account_sid(), f"othertoken{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
def pair(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("opt-outs")
    with running_stack(kafka_broker_url, base, accounts=[OTHER_ACCOUNT]) as stack:
        stack.add_worker()
        yield stack


def recipient() -> str:
    return f"+1415555{uuid.uuid4().int % 10_000:04d}"


async def send_one(stack: Stack, tenant_id: str, to: str) -> tuple[SmsRequested, Outcome]:
    request = SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenant_id, to=to, body=f"hi {uuid.uuid4().hex}")
    outcome = (await send_and_collect(stack.broker_url, [request]))[request.request_id]
    return request, outcome


def refused_as_opted_out(stack: Stack, request: SmsRequested, outcome: Outcome) -> bool:
    """The outcome is recipient_opted_out, and the simulator never saw the message."""
    assert isinstance(outcome, SmsFailed), outcome
    assert (outcome.error.code, outcome.error.provider_code, outcome.attempts) == (
        ErrorCode.RECIPIENT_OPTED_OUT,
        21610,
        0,
    )
    return request.body not in {message["body"] for message in simulator_messages(stack.simulator_url)}


def post_inbound(worker_url: str, public_url: str, tenant_id: str, token: str, form: dict[str, str]) -> int:
    """Twilio's inbound webhook as a load balancer delivers it to ``worker_url``: signed over the public URL."""
    path = f"/twilio/inbound/{urllib.parse.quote(tenant_id)}"
    headers = {SIGNATURE_HEADER: compute_signature(token, public_url + path, form)}
    post = urllib.request.Request(  # noqa: S310 - loopback
        worker_url + path, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310 - loopback
            assert b"<Response/>" in response.read()
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


async def listed(stack: Stack, tenant_id: str, number: str, timeout: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if any(entry.number == number for entry in await current_suppressions(stack.broker_url, tenant_id)):
            return True
        await asyncio.sleep(0.25)
    return False


@pytest.mark.timeout(180)
async def test_twilios_21610_puts_the_number_on_the_list_and_the_next_request_is_not_sent(pair: Stack) -> None:
    tenant = pair.tenant("live")
    number = recipient()
    # The recipient replied STOP to the tenant's number, but the reply never reached smsdispatch.
    await reply_from_recipient(pair.simulator_url, pair.live_account[0], number, LIVE_NUMBER, "STOP")

    _, first = await send_one(pair, tenant, number)
    second_request, second = await send_one(pair, tenant, number)

    assert isinstance(first, SmsFailed), first
    assert (first.error.code, first.error.provider_code) == (ErrorCode.PROVIDER_REJECTED, 21610)
    assert refused_as_opted_out(pair, second_request, second)
    assert await listed(pair, tenant, number)
    row = await row_when(pair.database_url, tenant, second_request.request_id, "failed")
    assert (row.error_code, row.provider_code) == ("recipient_opted_out", 21610)


@pytest.mark.timeout(240)
async def test_an_inbound_stop_on_either_worker_opts_out_start_opts_back_in_and_a_restart_keeps_the_list(
    pair: Stack,
) -> None:
    tenant = pair.tenant("live")
    other_tenant = pair.register(
        "other", "--account-sid", OTHER_ACCOUNT[0], "--auth-token", OTHER_ACCOUNT[1], "--from", LIVE_NUMBER
    )
    number = recipient()
    second_worker = pair.more_workers[0]

    # The recipient texts STOP; Twilio (the simulator) calls the public URL: the first worker.
    public_inbound = f"{pair.worker_url}/twilio/inbound/{tenant}"
    answer = await reply_from_recipient(pair.simulator_url, pair.live_account[0], number, LIVE_NUMBER, "STOP",
                                        url=public_inbound)  # fmt: skip
    assert answer["delivered"], answer
    assert await listed(pair, tenant, number)
    stopped_request, stopped = await send_one(pair, tenant, number)
    assert refused_as_opted_out(pair, stopped_request, stopped)
    _, elsewhere = await send_one(pair, other_tenant, number)
    assert isinstance(elsewhere, SmsDispatched), "one tenant's STOP never blocks another tenant's message"

    pair.restart_worker()  # the list is in Kafka: a new process reads it back before its first request
    _, after_restart = await send_one(pair, tenant, number)
    assert isinstance(after_restart, SmsFailed)
    assert after_restart.error.code is ErrorCode.RECIPIENT_OPTED_OUT

    # START arrives at the second worker (behind a load balancer, signed for the public URL).
    start = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": pair.live_account[0], "From": number,
             "To": LIVE_NUMBER, "Body": "START", "OptOutType": "START"}  # fmt: skip
    forged = post_inbound(second_worker.base_url, pair.worker_url, tenant, "not-the-token", start)
    assert forged == 403
    assert await listed(pair, tenant, number), "a forged START changes nothing"
    assert post_inbound(second_worker.base_url, pair.worker_url, tenant, pair.live_account[1], start) == 200
    await reply_from_recipient(pair.simulator_url, pair.live_account[0], number, LIVE_NUMBER, "START")
    deadline = asyncio.get_running_loop().time() + 20
    while await listed(pair, tenant, number, timeout=0.1):
        assert asyncio.get_running_loop().time() < deadline, "START did not take the number off the list"
        await asyncio.sleep(0.25)
    _, resumed = await send_one(pair, tenant, number)
    assert isinstance(resumed, SmsDispatched), resumed
