"""The Faust app's consumer configuration, checked on the aiokafka consumer the worker builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.app import create_app
from smsdispatch.runtime.kafka_clients import FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES, PRODUCER_LINGER_S

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_the_workers_consumer_fetches_within_100_ms_or_16_kb_and_assigns_partitions_by_range(
    kafka_broker_url: str, tmp_path: Path
) -> None:
    app = create_app(Settings(broker=kafka_broker_url, data_dir=str(tmp_path))).app
    thread = app.consumer._thread
    kafka_consumer = thread._create_worker_consumer(app.transport)
    await kafka_consumer.start()  # builds the fetcher, with the wait it will send in every fetch request
    try:
        fetch_wait_ms = kafka_consumer._fetcher._fetch_max_wait_ms
        fetch_min_bytes = kafka_consumer._fetcher._fetch_min_bytes
        assignors = kafka_consumer._coordinator._assignors
    finally:
        await kafka_consumer.stop()
        thread.thread_loop.close()  # the consumer thread's own loop, made for a thread that never ran

    assert FETCH_MAX_WAIT_MS == 100
    assert fetch_wait_ms == FETCH_MAX_WAIT_MS
    assert FETCH_MIN_BYTES == 16 * 1024
    assert fetch_min_bytes == FETCH_MIN_BYTES
    # Co-partitioning: the owner of partition p of sms.requested owns partition p of every topic it reads.
    assert [assignor.name for assignor in assignors] == ["range"]


async def test_the_workers_producer_lingers_10_ms_for_writes_to_share_a_request(
    kafka_broker_url: str, tmp_path: Path
) -> None:
    producer = create_app(Settings(broker=kafka_broker_url, data_dir=str(tmp_path))).app.producer
    kafka_producer = producer._new_producer()  # the aiokafka producer, built as the app would (not started)
    try:
        linger_ms = kafka_producer._message_accumulator._linger_time * 1000
    finally:
        await kafka_producer.stop()

    assert PRODUCER_LINGER_S == 0.010
    assert linger_ms == 10
