"""The Docker path of the test services: containers when asked and a Docker engine runs, a clear skip otherwise."""

from __future__ import annotations

import asyncio
import socket

import pytest

from smsdispatch.tools.testing.containers import (
    docker_unavailable,
    kafka_container,
    postgres_container,
    use_containers,
)
from smsdispatch.tools.testing.kafka import free_ports


def test_containers_are_used_where_a_docker_engine_answers_unless_turned_off() -> None:
    with socket.create_server(("127.0.0.1", 0)) as engine:  # anything that accepts connections, as dockerd does
        running = {"DOCKER_HOST": f"tcp://127.0.0.1:{engine.getsockname()[1]}"}
        assert use_containers(running) is True
        assert use_containers({**running, "SMSDISPATCH_TEST_CONTAINERS": "0"}) is False
    [port] = free_ports(1)
    none = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
    assert use_containers(none) is False, "no engine: the local broker and PostgreSQL"
    assert use_containers({**none, "SMSDISPATCH_TEST_CONTAINERS": "1"}) is True, "insisted on"


def test_kafka_and_postgres_containers_serve_a_record_and_a_query() -> None:
    reason = docker_unavailable()
    if reason is not None:
        pytest.skip(f"Docker path not tested: {reason}")
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def round_trip(bootstrap: str, database_url: str) -> tuple[bytes | None, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("containers-check", b"hello")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("containers-check", bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        engine = create_async_engine(database_url)
        async with engine.connect() as connection:
            answer = (await connection.execute(text("SELECT 42"))).scalar_one()
        await engine.dispose()
        return record.value, int(answer)

    with kafka_container() as bootstrap, postgres_container() as database_url:
        assert asyncio.run(round_trip(bootstrap, database_url)) == (b"hello", 42)


def test_an_engine_that_does_not_answer_is_named_in_one_sentence() -> None:
    [port] = free_ports(1)
    host = f"tcp://127.0.0.1:{port}"

    reason = docker_unavailable({"DOCKER_HOST": host})

    assert reason is not None
    assert reason.startswith(f"no Docker engine at {host} (")
    assert reason.endswith("the local broker and PostgreSQL are used.")
