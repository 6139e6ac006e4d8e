"""Kafka and PostgreSQL for tests in Docker containers (testcontainers), where a Docker engine runs.

Where a Docker engine answers and no test broker or database is given, the session's broker and database are
containers, started once and removed at the end. Where none answers (the machines this project is built on),
the local broker (Apache Kafka's jars) and the machine's own PostgreSQL are used, which need no Docker.
``SMSDISPATCH_TEST_CONTAINERS=0`` keeps the local ones even where Docker runs; ``=1`` insists on containers.
:func:`docker_unavailable` says why containers cannot run, in one sentence, for a skip.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

CONTAINERS_ENV = "SMSDISPATCH_TEST_CONTAINERS"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.1"
POSTGRES_IMAGE = "postgres:16-alpine"


def use_containers(env: Mapping[str, str] | None = None) -> bool:
    """Whether the test services run in containers: as ``SMSDISPATCH_TEST_CONTAINERS`` says (1/0), and by default
    whenever a Docker engine answers."""
    choice = (os.environ if env is None else env).get(CONTAINERS_ENV, "").strip().lower()
    if choice in ("1", "true", "yes"):
        return True
    if choice in ("0", "false", "no"):
        return False
    return docker_unavailable(env) is None


def docker_unavailable(env: Mapping[str, str] | None = None) -> str | None:
    """None when a Docker engine accepts connections; otherwise why not, as one sentence. (A plain socket, not
    the docker client: its failed attempts leave sockets open behind them.)"""
    if importlib.util.find_spec("testcontainers") is None:
        return "testcontainers is not installed (pip install testcontainers)."
    host = (os.environ if env is None else env).get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parsed = urlsplit(host)
    try:
        if parsed.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(2)
                probe.connect(parsed.path)
        else:
            with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 2375), timeout=2):
                pass
    except OSError as exc:
        return f"no Docker engine at {host} ({type(exc).__name__}); the local broker and PostgreSQL are used."
    return None


@contextmanager
def kafka_container() -> Iterator[str]:
    """Yield ``host:port`` of a single-node KRaft broker in a container."""
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield str(kafka.get_bootstrap_server())


@contextmanager
def postgres_container() -> Iterator[str]:
    """Yield a ``postgresql+asyncpg://`` URL of an empty database in a container."""
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver="asyncpg") as postgres:
        yield str(postgres.get_connection_url())
