"""The Faust app's configuration that can be checked without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.app import FETCH_MAX_WAIT_MS, create_app


@pytest.mark.asyncio
async def test_the_workers_consumer_lets_the_broker_hold_an_empty_fetch_for_100_ms_not_fausts_1500(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=str(tmp_path))).app

    thread = app.consumer._thread
    kafka_consumer = thread._create_worker_consumer(app.transport)
    await kafka_consumer.stop()  # never started: closes the client it made
    thread.thread_loop.close()  # the consumer thread's own loop, made for a thread that never ran

    assert FETCH_MAX_WAIT_MS == 100
    assert kafka_consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
