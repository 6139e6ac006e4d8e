"""Session-wide services every test directory may use: a real Kafka broker and a real PostgreSQL server.

The logic lives in ``smsdispatch.tools.testing`` so users can import it too. Set ``SMSDISPATCH_TEST_BROKER`` or
``SMSDISPATCH_TEST_DATABASE_URL`` to use servers of your own; otherwise a private broker and a private
PostgreSQL cluster start once per session, on free ports, and are removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smsdispatch.tools.testing.kafka import faust_broker_url, kafka_for_tests
from smsdispatch.tools.testing.postgres import PostgresServer, postgres_for_tests


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``127.0.0.1:PORT``: bootstrap servers in aiokafka's form."""
    with kafka_for_tests() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def kafka_broker_url(kafka_bootstrap: str) -> str:
    """``kafka://127.0.0.1:PORT``: the same broker in Faust's (and SMSDISPATCH_BROKER's) form."""
    return faust_broker_url(kafka_bootstrap)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """``.url`` of an empty database; ``.stop()``/``.start()`` stage an outage (they skip the test when
    the server comes from SMSDISPATCH_TEST_DATABASE_URL, which this run does not own)."""
    with postgres_for_tests(not_restartable=pytest.skip) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+asyncpg://…`` of the session's empty test database."""
    return postgres_server.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test using the broker or the database gets its marker even if its author forgot it,
    # so `-m "not kafka and not postgres"` reliably runs only the self-contained tests.
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "kafka_bootstrap" in fixtures:
            item.add_marker(pytest.mark.kafka)
        if "postgres_server" in fixtures:
            item.add_marker(pytest.mark.postgres)
