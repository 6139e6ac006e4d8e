"""A tenant in a 429 storm beside a calm one on the same partition, and a worker stopped mid-send.

Each test runs its own stack, in a module of its own: the scale-out module's workers, still running until that
module ends, would otherwise share this stack's consumer group and take half of its partitions.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from contextlib import aclosing

import pytest

from smsdispatch.client import SmsClient, parse_outcome, tail_topic
from smsdispatch.runtime.worker import home_partition
from smsdispatch.tools.simulator import random_account_sid
from smsdispatch.tools.testing.processes import worker_metric
from tests.integration.conftest import running_stack
from tests.integration.outcomes import inject_faults, now_ms, outcome_records
from tests.integration.scale import PARTITIONS, TO, duplicates, requests_for, sms_per_body, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]


async def test_a_tenant_in_a_429_storm_does_not_hold_up_another_tenant_on_its_partition(
    kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stormy_account = (random_account_sid(), f"token{uuid.uuid4().hex}")
    base = tmp_path_factory.mktemp("head-of-line")
    with running_stack(
        kafka_broker_url, base, simulator_args=["--latency-ms", "50"], accounts=[stormy_account]
    ) as stack:
        stormy = stack.register_live("stormy", stormy_account)
        calm = stack.register_live(
            next(
                f"calm{n}"
                for n in range(200)
                if home_partition(f"calm{n}-{stack.suffix}", PARTITIONS) == home_partition(stormy, PARTITIONS)
            )
        )
        inject_faults(stack.simulator_url, "rate_limit", account_sid=stormy_account[0], seconds=30)
        storm_requests = requests_for([stormy], 300, f"storm-{uuid.uuid4().hex[:6]}")
        calm_requests = requests_for([calm], 60, f"calm-{uuid.uuid4().hex[:6]}")
        # Request to outcome, both on this machine's wall clock: publish time here, the outcome record's Kafka
        # timestamp (set by the worker's producer), so a slow reader in the test does not count.
        published: dict[str, float] = {}
        produced: dict[str, float] = {}
        stop = asyncio.Event()

        async def follow() -> None:
            records = tail_topic(
                stack.broker_url, ["sms.dispatched", "sms.failed"], start_ms=now_ms() - 1000, stop=stop
            )
            async with aclosing(records):
                async for record in records:
                    outcome = parse_outcome(record)
                    if outcome is not None and outcome.tenant_id == calm and outcome.request_id is not None:
                        produced.setdefault(outcome.request_id, record.timestamp_ms / 1000)

        follower = asyncio.create_task(follow())
        async with SmsClient(stack.broker_url) as client:
            # One round trip first, so the calm tenant's registration has reached the worker's table and start-up
            # is not part of the figure.
            probe = await client.send(calm, TO, "probe")
            await client.wait_for(probe.request_id, timeout=120, tenant=calm)
            await client.publish_many(storm_requests)
            for request in calm_requests:
                published[request.request_id] = time.time()
                await client.publish(request)
                await asyncio.sleep(0.25)
        await wait_until(lambda: set(published) <= set(produced), 30, "every calm request's outcome")
        stop.set()
        follower.cancel()
        latencies = [produced[request_id] - at for request_id, at in published.items()]
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"\ncalm tenant beside a 429 storm: p50 {latencies[len(latencies) // 2]:.3f}s, p99 {p99:.3f}s")
        assert p99 < 1.0
        records = await outcome_records(
            stack.broker_url, 0, {r.request_id for r in storm_requests}, timeout=120, settle=0
        )
        assert len({request_id for request_id, _ in records}) == 300, "the stormy tenant's requests all end"


async def test_a_worker_told_to_stop_finishes_its_sends_and_the_next_owner_resends_nothing(
    kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("drain")
    with running_stack(kafka_broker_url, base, simulator_args=["--latency-ms", "3000"]) as stack:
        tenants = stack.register_live_many([f"d{n}" for n in range(4)])
        requests = requests_for(tenants, 200, f"drain-{uuid.uuid4().hex[:6]}")
        start = now_ms() - 1000
        async with SmsClient(stack.broker_url) as client:
            # One round trip first: the tenants just registered have reached the worker's table.
            probe = await client.send(tenants[0], TO, "probe")
            await client.wait_for(probe.request_id, timeout=180, tenant=tenants[0])
            await client.publish_many(requests)
        await wait_until(
            lambda: worker_metric(stack.worker_url, "smsdispatch_in_flight") >= 150, 60, "most sends in flight"
        )
        in_flight = worker_metric(stack.worker_url, "smsdispatch_in_flight")

        assert stack.worker.stop(timeout=60) == 0
        log = stack.worker.log_text()
        drained = re.search(r"dispatcher drained: (\d+) records finished and acked, (\d+) given back", log)
        print(f"\n{in_flight:.0f} sends in flight at SIGTERM; drain: {drained and drained.group(0)}")
        successor = stack.add_worker()

        records = await outcome_records(stack.broker_url, start, {r.request_id for r in requests}, timeout=60)
        assert drained is not None, "the worker drained its pipeline on the way out"
        assert int(drained.group(1)) >= in_flight, "every send in flight finished and was acked"
        assert duplicates(records) == {}
        sent = sms_per_body(stack, {request.body for request in requests})
        assert set(sent.values()) == {1}
        assert len(sent) == 200
        assert "may still be in flight" not in successor.log_text()
