"""A worker whose table recovery stalls after a rebalance (its tenants-changelog records never reach the tables,
tests/integration/stalling_worker.py) asks the group for a new generation, recovers in it and handles its
partitions' requests again: the recovery watchdog, end to end."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smsdispatch.contract import SmsDispatched, SmsRequested
from smsdispatch.tools.testing.processes import ManagedProcess
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import send_and_collect
from tests.integration.scale import wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("recovery-stall")
    with running_stack(kafka_broker_url, base) as running:
        running.worker.stop()
        running.worker = stalling_worker(running, base)
        running.worker.start(timeout=90)
        yield running


def stalling_worker(stack: Stack, base: Path) -> ManagedProcess:
    """The stack's worker (same port, data dir and settings), with the stall of tests/integration/stalling_worker."""
    port = stack.worker_url.rsplit(":", 1)[1]
    argv = [sys.executable, "-m", "tests.integration.stalling_worker", "worker", "--web-port", port,
            "--data-dir", str(base / "worker"), "--loglevel", "info"]  # fmt: skip
    return ManagedProcess(
        argv, env=stack.worker.env, log_path=base / "stalling-worker.log", ready_url=f"{stack.worker_url}/ready"
    )


def answer(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as refused:
        return int(refused.code), json.load(refused)


@pytest.mark.timeout(300)
async def test_a_stalled_recovery_is_restarted_by_a_new_generation_and_the_worker_handles_requests_again(
    stack: Stack,
) -> None:
    # Tenants registered now are written to the tenants table's changelog by the worker itself: after the
    # rebalance, it reads them back for the partitions it keeps (the stall drops exactly those records).
    names = [f"stall{n}" for n in range(8)]
    for name in names:
        stack.register_live(name)
    await wait_until(
        lambda: answer(f"{stack.worker_url}/health")[1]["tenants"] >= 16, 30, "the worker applying the 8 new tenants"
    )

    second = stack.add_worker()
    assert second.running()

    # The stall is seen (15 s without progress), the group is asked to rebalance, and the worker recovers.
    asked = "asking the group to rebalance"
    await wait_until(lambda: asked in stack.worker.log_text(), 60, "a stall warning asking the group to rebalance")
    await wait_until(lambda: answer(f"{stack.worker_url}/ready")[0] == 200, 60, "the stalled worker ready again")
    warning = next(line for line in stack.worker.log_text().splitlines() if asked in line)
    assert "tenants-changelog[" in warning, "the warning names the partitions left to restore"

    requests = [SmsRequested(request_id=uuid.uuid4().hex, tenant_id=stack.tenant(name), to="+14155550123",
                             body="after the stall") for name in names]  # fmt: skip
    outcomes = await send_and_collect(stack.broker_url, requests, timeout=90)
    assert all(isinstance(outcomes[r.request_id], SmsDispatched) for r in requests), outcomes
