"""Collecting outcomes from the real topics, for the integration tests."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from smsdispatch.adapters.storage import DispatchLog, DispatchLogRow
from smsdispatch.client import SmsClient, parse_outcome, tail_topic
from smsdispatch.contract import Outcome, SmsRequested, topics


def now_ms() -> int:
    return int(time.time() * 1000)


async def collect(
    broker_url: str, start_ms: int, wanted: Callable[[Outcome], bool], count: int, timeout: float = 60.0
) -> list[Outcome]:
    """The first ``count`` outcomes written since ``start_ms`` that ``wanted`` accepts; fails on timeout."""
    found: list[Outcome] = []
    stop = asyncio.Event()

    async def follow() -> None:
        records = tail_topic(broker_url, [topics.DISPATCHED, topics.FAILED], start_ms=start_ms, stop=stop)
        async with aclosing(records):
            async for record in records:
                outcome = parse_outcome(record)
                if outcome is not None and wanted(outcome):
                    found.append(outcome)
                    if len(found) >= count:
                        return

    try:
        await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        raise AssertionError(f"only {len(found)} of {count} outcomes within {timeout:g}s: {found!r}") from None
    finally:
        stop.set()
    return found


async def send_and_collect(broker_url: str, requests: list[SmsRequested], timeout: float = 60.0) -> dict[str, Outcome]:
    """Publish ``requests`` and return each one's outcome by request_id."""
    start = now_ms() - 1000
    ids = {request.request_id for request in requests}
    async with SmsClient(broker_url) as client:
        for request in requests:
            await client.publish(request)
    outcomes = await collect(broker_url, start, lambda o: o.request_id in ids, len(ids), timeout)
    return {outcome.request_id or "": outcome for outcome in outcomes}


def simulator_messages(simulator_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{simulator_url}/_sim/messages", timeout=5) as response:  # noqa: S310
        messages: list[dict[str, Any]] = json.load(response)
    return messages


def inject_faults(simulator_url: str, mode: str, count: int = 1, **more: object) -> None:
    """``POST /_sim/faults``: the next ``count`` creates fail with ``mode``; ``account_sid=…, seconds=…`` with
    mode ``rate_limit`` makes one account answer 429 for that long instead."""
    request = urllib.request.Request(  # noqa: S310
        f"{simulator_url}/_sim/faults",
        data=json.dumps({"mode": mode, "count": count, **more}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        assert response.status in (200, 201, 204)


async def outcome_records(
    broker_url: str, start_ms: int, ids: set[str], timeout: float, settle: float = 3.0
) -> list[tuple[str, bytes]]:
    """Every outcome record (duplicates included) for ``ids`` since ``start_ms``: read until each id has one, then
    ``settle`` seconds more, so late duplicates are counted too. Fails when some id has none by ``timeout``."""
    found: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    stop, all_seen = asyncio.Event(), asyncio.Event()

    async def follow() -> None:
        records = tail_topic(broker_url, [topics.DISPATCHED, topics.FAILED], start_ms=start_ms, stop=stop)
        async with aclosing(records):
            async for record in records:
                outcome = parse_outcome(record)
                if outcome is not None and outcome.request_id in ids and record.value is not None:
                    found.append((outcome.request_id, record.value))
                    seen.add(outcome.request_id)
                    if seen == ids:
                        all_seen.set()

    follower = asyncio.create_task(follow())
    try:
        try:
            await asyncio.wait_for(all_seen.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{len(ids - seen)} of {len(ids)} requests have no outcome after {timeout:g}s"
            ) from None
        await asyncio.sleep(settle)
    finally:
        stop.set()
        follower.cancel()
    return found


async def row_when(url: str, tenant_id: str, request_id: str, what: str, timeout: float = 60.0) -> DispatchLogRow:
    """Poll the dispatch log until the request's row has the status ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    log = await DispatchLog.open(url)
    try:
        while True:
            row = await log.get(request_id, tenant_id=tenant_id)
            if row is not None and row.status == what:
                return row
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {what!r} row for {request_id} after {timeout:g}s: {row!r}")
            await asyncio.sleep(0.25)
    finally:
        await log.close()


async def logged_request_ids(url: str, tenant_ids: set[str], expected: int, timeout: float = 60.0) -> set[str]:
    """The request_ids the dispatch log holds rows for among ``tenant_ids``, once there are ``expected`` of them or
    ``timeout`` has passed (the log sink trails the outcomes)."""
    from sqlalchemy import select

    from smsdispatch.adapters.storage.engine import create_engine, parse_database_url
    from smsdispatch.adapters.storage.tables import dispatch_log

    engine = create_engine(parse_database_url(url))
    query = select(dispatch_log.c.request_id).where(dispatch_log.c.tenant_id.in_(sorted(tenant_ids)))
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            async with engine.connect() as connection:
                found = {row[0] for row in await connection.execute(query)}
            if len(found) >= expected or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
