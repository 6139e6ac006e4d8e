"""The Faust app's consumer configuration, checked on the aiokafka consumer Faust builds for the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.app import FETCH_MAX_WAIT_MS, create_app

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_the_workers_fetches_wait_at_most_100_ms_for_new_records_not_fausts_1500(
    kafka_broker_url: str, tmp_path: Path
) -> None:
    app = create_app(Settings(broker=kafka_broker_url, data_dir=str(tmp_path))).app
    thread = app.consumer._thread
    kafka_consumer = thread._create_worker_consumer(app.transport)
    await kafka_consumer.start()  # builds the fetcher, with the wait it will send in every fetch request
    try:
        fetch_wait_ms = kafka_consumer._fetcher._fetch_max_wait_ms
    finally:
        await kafka_consumer.stop()
        thread.thread_loop.close()  # the consumer thread's own loop, made for a thread that never ran

    assert FETCH_MAX_WAIT_MS == 100
    assert fetch_wait_ms == FETCH_MAX_WAIT_MS
