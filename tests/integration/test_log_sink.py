"""The log sink in the worker, against the real PostgreSQL: outcomes and receipts land, once, even across an outage."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from smsdispatch.adapters.storage import DispatchLog, DispatchLogRow
from smsdispatch.adapters.twilio.signature import compute_signature
from smsdispatch.client import SmsClient
from smsdispatch.contract import SmsRequested
from smsdispatch.tools.simulator import random_account_sid
from smsdispatch.tools.testing.postgres import PostgresServer
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import send_and_collect

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.postgres]


# A second live account the simulator knows: tenant B of the cross-tenant callback test signs with its token.
OTHER_ACCOUNT = (random_account_sid(), f"othertoken{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
def pg_stack(kafka_broker_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("pg-stack")
    with running_stack(kafka_broker_url, base, database_url=postgres_url, accounts=[OTHER_ACCOUNT]) as running:
        yield running


def request(tenant_id: str, to: str = "+14155552671") -> SmsRequested:
    return SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenant_id, to=to, body=f"log {uuid.uuid4()}")


async def rows_when(
    url: str,
    request_ids: set[str],
    ready: callable[[DispatchLogRow], bool],
    timeout: float = 60.0,  # type: ignore[valid-type]
) -> dict[str, DispatchLogRow]:
    """Poll the dispatch log until every request has a row that satisfies ``ready``."""
    deadline = asyncio.get_running_loop().time() + timeout
    log = await DispatchLog.open(url)
    try:
        while True:
            rows = {rid: row for rid in request_ids if (row := await log.get(rid)) is not None}
            if len(rows) == len(request_ids) and all(ready(row) for row in rows.values()):
                return rows
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"dispatch log not ready after {timeout:g}s: {rows!r}")
            await asyncio.sleep(0.25)
    finally:
        await log.close()


def sink_retries(worker_url: str) -> float:
    with urllib.request.urlopen(f"{worker_url}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    found = re.search(r"^smsdispatch_sink_retries_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_outcomes_and_delivery_receipts_land_in_the_dispatch_log(pg_stack: Stack) -> None:
    delivered = request(pg_stack.tenant("live"))
    rejected = request(pg_stack.tenant("test"), to="+15005550001")
    await send_and_collect(pg_stack.broker_url, [delivered, rejected])
    rows = await rows_when(
        pg_stack.database_url,
        {delivered.request_id, rejected.request_id},
        lambda r: r.status in {"delivered", "failed"},
    )
    assert rows[delivered.request_id].status == "delivered", rows
    assert rows[delivered.request_id].provider_message_id is not None
    assert (rows[rejected.request_id].error_code, rows[rejected.request_id].provider_code) == (
        "provider_rejected",
        21211,
    )


async def test_a_repeated_request_leaves_one_row(pg_stack: Stack) -> None:
    twice = request(pg_stack.tenant("live"))
    async with SmsClient(pg_stack.broker_url) as client:
        await client.publish(twice)
        await client.publish(twice)
    await rows_when(pg_stack.database_url, {twice.request_id}, lambda r: r.status == "delivered")
    log = await DispatchLog.open(pg_stack.database_url)
    try:
        matching = [row for row in await log.recent(1000) if row.request_id == twice.request_id]
    finally:
        await log.close()
    assert len(matching) == 1


def forged_callback(stack: Stack, tenant_id: str, token: str, query: str, form: dict[str, str]) -> int:
    """POST a status callback to the worker, validly signed with ``token`` (the tenant's own, not the victim's)."""
    url = f"{stack.worker_url}/twilio/status/{tenant_id}{query}"
    body = urllib.parse.urlencode(form).encode()
    headers = {"X-Twilio-Signature": compute_signature(token, url, form)}
    post = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(post, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


async def test_a_tenant_cannot_rewrite_another_tenants_row_with_a_callback_signed_by_its_own_token(
    pg_stack: Stack,
) -> None:
    victim = pg_stack.register_live("iso-a")
    forger = pg_stack.register_live("iso-b", OTHER_ACCOUNT)
    sent = request(victim)
    await send_and_collect(pg_stack.broker_url, [sent])
    [before] = (await rows_when(pg_stack.database_url, {sent.request_id}, lambda r: r.status == "delivered")).values()
    sid = before.provider_message_id
    assert sid is not None
    forged = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30008", "AccountSid": OTHER_ACCOUNT[0]}

    # Naming the victim's request and SID, and naming only the SID: both signed with the forger's own token.
    answers = [
        forged_callback(pg_stack, forger, OTHER_ACCOUNT[1], f"?request_id={sent.request_id}", forged),
        forged_callback(pg_stack, forger, OTHER_ACCOUNT[1], "", {**forged, "MessageStatus": "undelivered"}),
    ]
    # Both forged receipts went to sms.status keyed by the forger, so in order: once the first has made the
    # forger's own row (its key is (forger, request_id) now), the SID-only one is applied in the same breath.
    log = await DispatchLog.open(pg_stack.database_url)
    try:
        forger_row = None
        for _ in range(120):
            if (forger_row := await log.get(sent.request_id, tenant_id=forger)) is not None:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(2)
        after = await log.get(sent.request_id, tenant_id=victim)
    finally:
        await log.close()
    print(f"\nforged callbacks answered {answers}; the forger's own row: {forger_row}")
    assert after is not None
    assert (after.tenant_id, after.status, after.error_code, after.provider_code) == (victim, "delivered", None, None)
    assert after.provider_message_id == sid


async def test_a_postgres_outage_stalls_the_sink_not_the_dispatcher_and_loses_nothing(
    pg_stack: Stack, postgres_server: PostgresServer
) -> None:
    requests = [request(pg_stack.tenant("live")) for _ in range(20)]
    retries_before = sink_retries(pg_stack.worker_url)
    postgres_server.stop()
    try:
        outcomes = await send_and_collect(pg_stack.broker_url, requests)  # the dispatcher keeps sending
        assert len(outcomes) == len(requests)
        for _ in range(120):
            if sink_retries(pg_stack.worker_url) > retries_before:
                break
            await asyncio.sleep(0.25)
        assert sink_retries(pg_stack.worker_url) > retries_before
        assert "to the dispatch log failed" in pg_stack.worker.log_text()
    finally:
        postgres_server.start()
    rows = await rows_when(pg_stack.database_url, {r.request_id for r in requests}, lambda r: r.status == "delivered")
    assert len(rows) == len(requests)
