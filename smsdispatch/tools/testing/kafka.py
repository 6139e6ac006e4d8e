"""A Kafka broker for a test session: the one ``SMSDISPATCH_TEST_BROKER`` names, or a private local one.

The private broker runs on free ports with a throw-away data directory, so it never touches a developer's
broker on 9092, and is stopped when the session ends::

    with kafka_for_tests() as bootstrap:     # "127.0.0.1:PORT"
        ...
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.tools.localkafka import LocalKafka
from smsdispatch.tools.localkafka._process import port_is_free
from smsdispatch.tools.testing.containers import kafka_container, use_containers

TEST_BROKER_ENV = "SMSDISPATCH_TEST_BROKER"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the OS says are free now (bound together, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P with P and P+1 both free now: ``smsdispatch kafka --port P`` puts its controller on P+1."""
    for _ in range(100):
        (port,) = free_ports(1, host)
        if port < 65535 and port_is_free(host, port + 1):
            return port
    raise RuntimeError("no two adjacent free ports were found")


def bootstrap_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``SMSDISPATCH_TEST_BROKER`` in aiokafka's form; it may be given as ``host:port`` or ``kafka://host:port``."""
    value = (os.environ if env is None else env).get(TEST_BROKER_ENV, "").strip()
    return bootstrap_servers(value) or None


def faust_broker_url(bootstrap: str) -> str:
    """``127.0.0.1:9092,h2:9092`` (aiokafka's form) as ``kafka://127.0.0.1:9092;h2:9092`` (Faust's form)."""
    return "kafka://" + bootstrap.replace(",", ";")


@contextmanager
def kafka_for_tests(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the bootstrap servers (``127.0.0.1:PORT``) of a broker that runs for the ``with`` block."""
    external = bootstrap_from_env(env)
    if external is not None:
        yield external
        return
    if use_containers(env):
        with kafka_container() as bootstrap:
            yield bootstrap
        return
    port, controller_port = free_ports(2)
    data_dir = Path(tempfile.mkdtemp(prefix="smsdispatch-test-kafka-"))
    broker = LocalKafka(port, data_dir, controller_port=controller_port, die_with_parent=True)
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
