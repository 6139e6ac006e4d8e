"""Status polling with two workers in one group: each message is polled once, by the worker that owns its tenant's
partition. A module of its own: a second stack alive beside another module's would join the same consumer group."""

from __future__ import annotations

import pytest

from smsdispatch.tools.testing.processes import worker_metric
from tests.integration.conftest import running_stack
from tests.integration.outcomes import send_and_collect
from tests.integration.test_tracking import final_rows, requests

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.timeout(300)
async def test_with_two_workers_each_message_is_polled_once_by_the_worker_owning_its_tenant(
    kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"SMSDISPATCH_STATUS_POLL_SECONDS": "2"}
    base = tmp_path_factory.mktemp("tracking-pair")
    with running_stack(kafka_broker_url, base, env=env, callbacks=False) as pair:
        pair.add_worker()
        tenants = pair.register_live_many([f"pair{n}" for n in range(6)])
        sent = [request for tenant in tenants for request in requests(tenant, 3)]

        await send_and_collect(pair.broker_url, sent, timeout=120)
        for tenant in tenants:
            await final_rows(pair, tenant, {r.request_id for r in sent if r.tenant_id == tenant})

        polled = [
            sum(
                worker_metric(worker.base_url, "smsdispatch_status_polls_total", f'result="final",tenant="{tenant}"')
                for tenant in tenants
            )
            for worker in pair.workers()
        ]
    print(f"\nfinal polls per worker: {polled} for {len(sent)} messages")
    assert sum(polled) == len(sent), "every message polled to its final status once, by one worker"
