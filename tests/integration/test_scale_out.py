"""Many workers in one group, through joins, leaves, kills and restarts: nothing lost, nothing sent or told twice.

Real processes against the session's broker and a simulator answering after 50 ms. Counting is done from the
outside: every outcome record on the topics, every message the simulator accepted.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import pytest

from smsdispatch.client import SmsClient
from smsdispatch.runtime.worker import home_partition
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import logged_request_ids, now_ms, outcome_records
from tests.integration.scale import (
    PARTITIONS,
    assignments,
    duplicates,
    held,
    requests_for,
    sms_per_body,
    where_are,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def group(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("scale-out")
    # A short send deadline keeps the fence after a SIGKILL (deadline + 2 s) short enough for CI.
    env = {"SMSDISPATCH_SEND_DEADLINE_SECONDS": "10", "SMSDISPATCH_DRAIN_SECONDS": "8"}
    with running_stack(kafka_broker_url, base, simulator_args=["--latency-ms", "50"], env=env) as stack:
        yield stack


# Longer than the outcome wait below, so a run that misses requests ends with where they are, not a bare timeout.
@pytest.mark.timeout(600)
async def test_workers_joining_leaving_and_killed_lose_nothing_and_send_nothing_twice(group: Stack) -> None:
    tenants = group.register_live_many([f"t{n}" for n in range(20)])
    group.add_worker()
    group.add_worker()
    requests = requests_for(tenants, 10_000, f"scale-{uuid.uuid4().hex[:6]}")
    ids = {request.request_id for request in requests}
    start = now_ms() - 1000
    async with SmsClient(group.broker_url) as client:
        # Half now, half after the SIGTERM: work is still coming in when the kill comes, however fast the rest was.
        publishing = asyncio.create_task(client.publish_many(requests[:5_000]))
        first, second, third = group.workers()

        await asyncio.sleep(4)
        fourth = group.add_worker()  # joins mid-run
        await asyncio.sleep(4)
        assert first.stop() == 0, "a worker told to stop exits cleanly"  # leaves on SIGTERM
        await publishing
        publishing = asyncio.create_task(client.publish_many(requests[5_000:]))
        # Killed while it holds records, so the crash path is what is tested (it may be between assignments).
        in_flight_at_kill = 0.0
        for _ in range(450):
            in_flight_at_kill = held(second)
            if in_flight_at_kill > 0:
                break
            await asyncio.sleep(0.2)
        assert in_flight_at_kill > 0, "the worker to be killed never held a record"
        second.kill()  # crashes with records in flight
        second.start(timeout=90)
        await publishing

    try:
        records = await outcome_records(group.broker_url, start, ids, timeout=240)
    except AssertionError as missing:
        raise AssertionError(f"{missing}\n{await where_are(group.broker_url, start, ids, group.app_id)}") from None

    twice = duplicates(records)
    given_back = sum(
        int(match) for worker in group.workers() for match in re.findall(r"(\d+) given back unacked", worker.log_text())
    )
    print(f"\nrecords given back unacked by drains during the run (read again by their next owner): {given_back}")
    print(f"\n{len(records)} outcome records for {len(ids)} requests; {len(twice)} duplicated, "
          f"{in_flight_at_kill:.0f} records held by the killed worker")  # fmt: skip
    assert len(twice) <= in_flight_at_kill, "only records in flight at the SIGKILL may be answered twice"
    assert all(len(set(values)) == 1 for values in twice.values()), "a duplicate is byte-identical"
    bodies = {request.body for request in requests}
    sent = sms_per_body(group, bodies)
    print(f"SMS: {len(bodies - set(sent))} requests never sent, {sum(n > 1 for n in sent.values())} sent twice")
    assert set(sent) == bodies, "every request was sent"
    assert set(sent.values()) == {1}, "exactly one SMS per request"
    for worker in (second, third, fourth):
        assert worker.running(), f"a worker exited:\n{worker.log_tail()}"
    logged = await logged_request_ids(group.database_url, set(tenants), len(ids))
    print(f"dispatch log: {len(ids - logged)} requests without a row")
    assert logged == ids, "the log sinks, through the same rebalances, wrote a row for every request"
    gaps = {worker.base_url: worker.log_text().count("were not delivered before") for worker in group.workers()}
    print(f"offset gaps filled, by worker: {gaps}")
    assert set(gaps.values()) == {0}, "no record went missing from what a worker's consumer delivered"
    assigned = assignments(group.workers())
    print(f"{len(assigned)} assignments logged by the workers through the run")
    assert len(assigned) >= 8, "every worker logs each assignment it gets (joins, a leave, a kill, a restart)"
    for assignment in assigned:  # the owner of sms.requested partition p owns partition p of every topic it reads
        assert len({tuple(partitions) for partitions in assignment.values()}) == 1, assignment
        assert set(assignment) == {"sms.requested", "sms.dispatched", "sms.failed", "sms.status"}, assignment
    for worker in (third, fourth, second):
        assert worker.stop() == 0
    group.worker.start(timeout=90)  # the module's other tests start from one worker


async def test_a_worker_starting_on_a_backlog_gives_each_record_exactly_one_outcome(group: Stack) -> None:
    for worker in group.workers():
        worker.stop()
    tenants = group.register_live_many([f"b{n}" for n in range(4)])
    requests = requests_for(tenants, 2_000, f"backlog-{uuid.uuid4().hex[:6]}")
    start = now_ms() - 1000
    async with SmsClient(group.broker_url) as client:
        for n, request in enumerate(requests):
            value = request.model_dump_json(exclude_none=True).encode()
            if n % 10 == 1:
                await client.publish_raw(None, value)  # unkeyed
            elif n % 10 == 2:
                wrong = (home_partition(request.tenant_id, PARTITIONS) + 1) % PARTITIONS
                await client.publish_raw(b"x", value, partition=wrong)
            else:
                await client.publish_raw(request.tenant_id.encode(), value)
    group.worker.start(timeout=90)

    records = await outcome_records(group.broker_url, start, {r.request_id for r in requests}, timeout=120)

    assert duplicates(records) == {}
    assert len(records) == len(requests)
