from __future__ import annotations

import socket

import pytest

from smsdispatch.tools.testing.kafka import bootstrap_from_env, faust_broker_url, free_ports, kafka_for_tests


@pytest.mark.parametrize(
    ("value", "bootstrap"),
    [
        ("kafka://10.0.0.5:9092", "10.0.0.5:9092"),
        ("broker-a:9092,broker-b:9092", "broker-a:9092,broker-b:9092"),
        ("kafka://a:1;kafka://b:2", "a:1,b:2"),
        ("  ", None),
    ],
)
def test_test_broker_env_is_accepted_in_faust_or_aiokafka_form(value: str, bootstrap: str | None) -> None:
    assert bootstrap_from_env({"SMSDISPATCH_TEST_BROKER": value}) == bootstrap


def test_broker_named_by_env_is_used_as_is() -> None:
    with kafka_for_tests({"SMSDISPATCH_TEST_BROKER": "kafka://broker.example:9092"}) as bootstrap:
        assert bootstrap == "broker.example:9092"


def test_faust_url_lists_every_bootstrap_server() -> None:
    assert faust_broker_url("127.0.0.1:9092") == "kafka://127.0.0.1:9092"
    assert faust_broker_url("a:1,b:2") == "kafka://a:1;b:2"


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(3)

    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
