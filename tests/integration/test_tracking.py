"""Final status without callbacks, and signed webhooks, end to end: a worker with no SMSDISPATCH_PUBLIC_URL polls
Twilio (the simulator) 2 s after dispatch, and every outcome and status of a tenant with a webhook URL reaches
a receiver in the test, at least once, with one webhook-id, whatever the other tenants' endpoints do."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook

from smsdispatch.adapters.crypto import Keyring
from smsdispatch.adapters.storage import DispatchLog, DispatchLogRow
from smsdispatch.client import latest_tenant_records
from smsdispatch.contract import SmsDispatched, SmsRequested
from smsdispatch.tools.testing.processes import worker_metric
from tests.integration.conftest import LIVE_NUMBER, Stack, running_stack
from tests.integration.outcomes import send_and_collect
from tests.integration.webhook_receiver import Hit, WebhookReceiver

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

FINAL = {"delivered", "undelivered", "failed"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "SMSDISPATCH_STATUS_POLL_SECONDS": "2",
        "SMSDISPATCH_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    }
    sim = ["--undelivered-rate", "0.5", "--seed", "11"]
    base = tmp_path_factory.mktemp("tracking")
    # No callbacks (no SMSDISPATCH_PUBLIC_URL): polling is the only way to a final status.
    with running_stack(kafka_broker_url, base, env=env, simulator_args=sim, callbacks=False) as running:
        yield running


def requests(tenant_id: str, count: int) -> list[SmsRequested]:
    return [
        SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenant_id, to="+14155552671", body=f"track {n}")
        for n in range(count)
    ]


async def final_rows(stack: Stack, tenant_id: str, ids: set[str], timeout: float = 60.0) -> list[DispatchLogRow]:
    deadline = asyncio.get_running_loop().time() + timeout
    log = await DispatchLog.open(stack.database_url)
    try:
        while True:
            rows = [row for rid in ids if (row := await log.get(rid, tenant_id=tenant_id)) is not None]
            if len(rows) == len(ids) and all(row.status in FINAL for row in rows):
                return rows
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not all final after {timeout:g}s: {[(r.request_id, r.status) for r in rows]}")
            await asyncio.sleep(0.25)
    finally:
        await log.close()


async def register_with_webhook(stack: Stack, name: str, url: str) -> tuple[str, str]:
    """Register a live tenant with a webhook; returns its id and its signing secret (read back from its config)."""
    sid, token = stack.live_account
    tenant_id = stack.register(name, "--account-sid", sid, "--auth-token", token, "--from", LIVE_NUMBER,
                               "--webhook-url", url)  # fmt: skip
    record = (await latest_tenant_records(stack.broker_url))[tenant_id]
    secret = Keyring.from_value(stack.env["SMSDISPATCH_ENCRYPTION_KEYS"]).unseal(record.config).webhook_secret
    assert secret is not None
    return tenant_id, secret.get_secret_value()


async def hits_for(receiver: WebhookReceiver, prefix: str, count: int, timeout: float = 30.0) -> list[Hit]:
    deadline = time.monotonic() + timeout
    while len(receiver.at(prefix)) < count:
        assert time.monotonic() < deadline, f"{len(receiver.at(prefix))} of {count} webhooks at {prefix}"
        await asyncio.sleep(0.1)
    return list(receiver.at(prefix))


# --- status polling -------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
async def test_without_a_public_url_messages_reach_their_final_status_in_the_log_by_polling(stack: Stack) -> None:
    tenant = stack.tenant("live")
    sent = requests(tenant, 12)

    outcomes = await send_and_collect(stack.broker_url, sent)
    rows = await final_rows(stack, tenant, set(outcomes))

    assert all(isinstance(outcome, SmsDispatched) for outcome in outcomes.values())
    delivered = [row for row in rows if row.status == "delivered"]
    undelivered = [row for row in rows if row.status == "undelivered"]
    print(f"\npolled to final: {len(delivered)} delivered, {len(undelivered)} undelivered")
    assert delivered
    assert undelivered
    assert all(row.provider_code is not None and 30000 <= row.provider_code < 31000 for row in undelivered)
    assert worker_metric(stack.worker_url, "smsdispatch_status_polls_total", f'result="final",tenant="{tenant}"') >= 12


@pytest.mark.timeout(240)
async def test_a_pending_poll_survives_a_worker_crash_and_is_done_by_the_next_process(stack: Stack) -> None:
    tenant = stack.tenant("apikey")  # an API-key tenant: never asks for callbacks, polling is all it has
    sent = requests(tenant, 1)
    await send_and_collect(stack.broker_url, sent)
    deadline = time.monotonic() + 10
    while json.loads(_get(f"{stack.worker_url}/health"))["pending"]["polls"] < 1:
        assert time.monotonic() < deadline, "the poll was never enqueued"
        await asyncio.sleep(0.05)

    stack.restart_worker(crash=True)  # SIGKILL well within the 2 s before the poll is due

    (row,) = await final_rows(stack, tenant, {sent[0].request_id})
    polled = worker_metric(stack.worker_url, "smsdispatch_status_polls_total", f'result="final",tenant="{tenant}"')
    assert polled >= 1, "the new process did the poll"
    assert row.status in FINAL


@pytest.mark.timeout(120)
async def test_messages_of_test_credential_tenants_are_never_polled(stack: Stack) -> None:
    tenant = stack.tenant("test")
    await send_and_collect(stack.broker_url, requests(tenant, 2))
    await asyncio.sleep(4)  # twice the poll delay

    assert worker_metric(stack.worker_url, "smsdispatch_status_polls_total", f'tenant="{tenant}"') == 0


# --- webhooks ----------------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
async def test_each_outcome_and_status_arrives_signed_so_the_standardwebhooks_verifier_accepts_it(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    tenant, secret = await register_with_webhook(stack, "hook-ok", f"{receiver.base_url}/ok/a")

    await send_and_collect(stack.broker_url, requests(tenant, 1))
    hits = await hits_for(receiver, "/ok/a", 2)  # sms.dispatched, then the polled final status

    kinds = set()
    for hit in receiver.at("/ok/a"):
        payload = Webhook(secret).verify(hit.body, hit.headers)
        kinds.add(payload["type"])
        assert payload["data"]["tenant_id"] == tenant
    assert {"sms.dispatched", "sms.status"} <= kinds, hits


@pytest.mark.timeout(120)
async def test_an_endpoint_failing_3_times_gets_the_same_webhook_id_until_it_answers(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    tenant, _ = await register_with_webhook(stack, "hook-flaky", f"{receiver.base_url}/flaky/b")

    await send_and_collect(stack.broker_url, requests(tenant, 1))
    first_id = (await hits_for(receiver, "/flaky/b", 1))[0].headers["webhook-id"]
    deadline = time.monotonic() + 60
    while len(same := [hit for hit in receiver.at("/flaky/b") if hit.headers["webhook-id"] == first_id]) < 4:
        assert time.monotonic() < deadline, f"only {len(same)} attempts of {first_id}"
        await asyncio.sleep(0.1)

    assert [hit.answered for hit in same] == [500, 500, 500, 204]
    assert json.loads(same[0].body) == json.loads(same[3].body), "the same body every time"
    assert (
        worker_metric(stack.worker_url, "smsdispatch_webhook_deliveries_total", f'result="retry",tenant="{tenant}"')
        >= 3
    )


@pytest.mark.timeout(120)
async def test_a_hanging_endpoint_of_one_tenant_never_delays_another_tenants_webhooks(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    hanging, _ = await register_with_webhook(stack, "hook-hang", f"{receiver.base_url}/hang/c")
    healthy, _ = await register_with_webhook(stack, "hook-fast", f"{receiver.base_url}/ok/d")
    await send_and_collect(stack.broker_url, requests(hanging, 10))  # every one of them hangs at the endpoint

    fast = await send_and_collect(stack.broker_url, requests(healthy, 10))
    await hits_for(receiver, "/ok/d", 10)

    arrived = {json.loads(hit.body)["data"]["request_id"]: hit.at for hit in receiver.at("/ok/d")
               if json.loads(hit.body)["type"] == "sms.dispatched"}  # fmt: skip
    delays = sorted(
        arrived[rid] - o.dispatched_at.timestamp() for rid, o in fast.items() if isinstance(o, SmsDispatched)
    )
    print(f"\nwebhooks beside a hanging endpoint, seconds after dispatch: {[round(d, 3) for d in delays]}")
    assert len(delays) == 10
    assert delays[-1] < 1.0


@pytest.mark.timeout(240)
async def test_deliveries_pending_when_the_worker_is_killed_arrive_after_the_restart(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    tenant, _ = await register_with_webhook(stack, "hook-switch", f"{receiver.base_url}/switch/e")
    await send_and_collect(stack.broker_url, requests(tenant, 3))
    deadline = time.monotonic() + 30
    while len(ids := {hit.headers["webhook-id"] for hit in receiver.at("/switch/e")}) < 3:
        assert time.monotonic() < deadline, "the three sms.dispatched webhooks were never attempted"
        await asyncio.sleep(0.1)

    stack.restart_worker(crash=True)
    receiver.switch_on.set()

    deadline = time.monotonic() + 90
    while not ids <= {hit.headers["webhook-id"] for hit in receiver.at("/switch/e") if hit.answered == 204}:
        assert time.monotonic() < deadline, "the pending deliveries did not arrive after the restart"
        await asyncio.sleep(0.25)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        body: bytes = response.read()
        return body
