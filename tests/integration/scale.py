"""Builders and counters shared by the scale-out tests: requests, duplicates, SMS per body, waiting."""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from collections.abc import Callable

import pytest

from smsdispatch.contract import SmsRequested
from smsdispatch.tools.testing.processes import ManagedProcess, worker_metric
from tests.integration.conftest import Stack
from tests.integration.outcomes import simulator_messages

PARTITIONS = 8
TO = "+14155552671"


_ASSIGNED = re.compile(r"partitions assigned: (.*)$", re.M)


def assignments(workers: list[ManagedProcess]) -> list[dict[str, list[int]]]:
    """Every assignment the workers logged (one line per rebalance each): partitions by topic."""
    found = []
    for worker in workers:
        for line in _ASSIGNED.findall(worker.log_text()):
            found.append({
                topic: [int(p) for p in partitions.split(",") if p]
                for topic, _, partitions in (part.partition("=") for part in line.split())
            })  # fmt: skip
    return found


def held(worker: ManagedProcess) -> float:
    return worker_metric(worker.base_url, "smsdispatch_pipeline_records", 'pipeline="dispatcher"')


def requests_for(tenants: list[str], count: int, tag: str) -> list[SmsRequested]:
    return [
        # A recipient each, as real traffic has: reconciliation after a crash looks messages up by recipient.
        SmsRequested(
            request_id=f"{tag}-{n}",
            tenant_id=tenants[n % len(tenants)],
            to=f"+1415{2_000_000 + n:07d}",
            body=f"{tag} {n}",
        )
        for n in range(count)
    ]


def duplicates(records: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    by_id: dict[str, list[bytes]] = collections.defaultdict(list)
    for request_id, value in records:
        by_id[request_id].append(value)
    return {request_id: values for request_id, values in by_id.items() if len(values) > 1}


def sms_per_body(stack: Stack, bodies: set[str]) -> collections.Counter[str]:
    return collections.Counter(m["body"] for m in simulator_messages(stack.simulator_url) if m["body"] in bodies)


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout:g}s")


async def where_are(broker_url: str, start_ms: int, request_ids: set[str], group: str) -> str:
    """For a failure message: each request of ``request_ids`` without an outcome, with its partition and offset on
    sms.requested next to the group's committed offset there (committed past it means acked without an outcome;
    below it, not reached yet)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from smsdispatch.client import read_topic
    from smsdispatch.contract.settings import bootstrap_servers

    answered: set[str] = set()
    async for record in read_topic(broker_url, ["sms.dispatched", "sms.failed"], start_ms=start_ms):
        answered.add(json.loads(record.value or b"{}").get("request_id"))
    request_ids = request_ids - answered
    found: list[tuple[int, int, str]] = []
    async for record in read_topic(broker_url, ["sms.requested"], start_ms=start_ms):
        request_id = json.loads(record.value or b"{}").get("request_id") if record.value else None
        if request_id in request_ids:
            found.append((record.partition, record.offset, request_id))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=group)
    await consumer.start()
    try:
        committed = {p: await consumer.committed(TopicPartition("sms.requested", p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()
    lines = [f"p{p} offset {o} (committed {committed[p]}): {r}" for p, o, r in sorted(found)[:40]]
    return f"{len(found)} records found for {len(request_ids)} ids\n" + "\n".join(lines)
