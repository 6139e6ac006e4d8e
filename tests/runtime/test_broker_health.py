"""Kafka reachability for /health: state changes and a bounded number of log lines during an outage."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.errors import KafkaConnectionError

from smsdispatch.runtime.broker_health import BrokerHealth


class Broker:
    def __init__(self) -> None:
        self.up = True

    async def probe(self) -> None:
        if not self.up:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]")


@pytest.mark.asyncio
async def test_a_failed_probe_reports_kafka_unreachable_with_how_long_and_how_often() -> None:
    broker, clock = Broker(), [100.0]
    health = BrokerHealth(broker.probe, clock=lambda: clock[0])
    assert await health.check() is True
    assert health.report() == {"reachable": True}

    broker.up = False
    await health.check()
    clock[0] += 12.5
    await health.check()

    assert health.reachable is False
    assert health.report() == {"reachable": False, "unreachable_seconds": 12.5, "failed_probes": 2}


@pytest.mark.asyncio
async def test_kafka_coming_back_makes_it_reachable_again() -> None:
    broker = Broker()
    health = BrokerHealth(broker.probe)
    broker.up = False
    await health.check()
    broker.up = True

    assert await health.check() is True
    assert health.report() == {"reachable": True}


@pytest.mark.asyncio
async def test_a_probe_that_hangs_counts_as_a_failure_after_its_timeout() -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    health = BrokerHealth(hangs, timeout=0.01)

    assert await health.check() is False
    assert health.reachable is False


@pytest.mark.asyncio
async def test_an_outage_logs_one_warning_per_reminder_interval_and_one_line_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, clock = Broker(), [0.0]
    health = BrokerHealth(broker.probe, remind_every=30.0, clock=lambda: clock[0])
    broker.up = False
    with caplog.at_level(logging.INFO, logger="smsdispatch.broker"):
        for _ in range(24):  # two minutes of probes every 5 s
            await health.check()
            clock[0] += 5
        broker.up = True
        await health.check()

    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 + 3 + 1, messages  # went away, three reminders, came back
    assert messages[0].startswith("Kafka is unreachable (KafkaConnectionError)")
    assert "still unreachable after 30s (7 probes failed)" in messages[1]
    assert messages[-1] == "Kafka is reachable again after 120s"
