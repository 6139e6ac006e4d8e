"""/health, /live and /metrics of a worker whose Kafka producer is stuck: a write never acknowledged (issue 22).

The worker's app is built as in production, its pages served in-process; its producer is replaced by one whose
single write never completes, on a clock the test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from smsdispatch.adapters.kafka import PendingWrites
from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.worker import build_worker
from tests.core.fakes import KEYRING

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StuckProducer:
    """What the worker reads of its aiokafka producer: the writes it waits for, and what they wait for."""

    pending: PendingWrites

    def waiting_for(self, topic: str, partition: int | None) -> str:
        return "the topic's metadata (not in the producer's metadata)"


@dataclass
class Worker:
    client: TestClient[Request, Application]
    clock: Clock
    write: asyncio.Future[Any]

    async def get(self, path: str) -> tuple[int, Any]:
        response = await self.client.get(path)
        body = await (response.json() if path != "/metrics" else response.text())
        return response.status, body


@pytest_asyncio.fixture
async def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Worker]:
    streams = build_worker(Settings(data_dir=str(tmp_path), stall_seconds=30), KEYRING)
    clock = Clock()
    pending = PendingWrites(clock)
    write: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pending.watch(write, "sms.dispatched", 3)
    monkeypatch.setattr(streams.app.producer, "kafka_producer", lambda: StuckProducer(pending))
    client = TestClient(TestServer(streams.app.web.web_app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Worker(client, clock, write)
    finally:
        write.cancel()
        await client.close()


async def test_a_kafka_write_unacknowledged_past_the_stall_time_makes_health_degraded_and_live_fail(
    worker: Worker,
) -> None:
    worker.clock.now += 45

    health_status, health = await worker.get("/health")
    live_status, live = await worker.get("/live")
    _, metrics = await worker.get("/metrics")

    assert health_status == 200
    assert health["status"] == "degraded"
    assert health["reasons"] == ["a Kafka write has waited 45 s for its acknowledgement"]
    assert (live_status, live["live"]) == (503, False)
    assert live["reasons"] == health["reasons"]
    assert "smsdispatch_degraded 1.0" in metrics
    assert "smsdispatch_kafka_oldest_write_seconds 45.0" in metrics


async def test_a_write_waiting_less_than_the_stall_time_leaves_the_worker_ok(worker: Worker) -> None:
    worker.clock.now += 29

    _, health = await worker.get("/health")
    live_status, _ = await worker.get("/live")
    _, metrics = await worker.get("/metrics")

    assert (health["status"], health["reasons"]) == ("ok", [])
    assert live_status == 200
    assert "smsdispatch_degraded 0.0" in metrics


async def test_once_the_stuck_write_is_acknowledged_the_worker_is_ok_again(worker: Worker) -> None:
    worker.clock.now += 45
    assert (await worker.get("/live"))[0] == 503

    worker.write.set_result(None)
    await asyncio.sleep(0)

    _, health = await worker.get("/health")
    assert (health["status"], (await worker.get("/live"))[0]) == ("ok", 200)
