"""The log sink in the worker, against the real PostgreSQL: outcomes and receipts land, once, even across an outage."""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from smsdispatch.client import SmsClient
from smsdispatch.schemas import SmsRequested
from smsdispatch.storage import DispatchLog, DispatchLogRow
from smsdispatch.testing.postgres import PostgresServer
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import send_and_collect

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_stack(kafka_broker_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(kafka_broker_url, tmp_path_factory.mktemp("pg-stack"), database_url=postgres_url) as running:
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
        assert "dispatch log write failed" in pg_stack.worker.log_text()
    finally:
        postgres_server.start()
    rows = await rows_when(pg_stack.database_url, {r.request_id for r in requests}, lambda r: r.status == "delivered")
    assert len(rows) == len(requests)
