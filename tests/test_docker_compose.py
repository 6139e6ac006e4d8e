"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked against the contract:
services, ports and SMSDISPATCH_* variables (whose names are the fields of smsdispatch.contract.settings.Settings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from smsdispatch.contract.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The environment table of docs/contract.md.
CONTRACT_VARIABLES = {
    "SMSDISPATCH_BROKER",
    "SMSDISPATCH_DATABASE_URL",
    "SMSDISPATCH_ENCRYPTION_KEYS",
    "SMSDISPATCH_TWILIO_BASE_URL",
    "SMSDISPATCH_PARTITIONS",
    "SMSDISPATCH_PUBLIC_URL",
}
KNOWN_VARIABLES = {f"SMSDISPATCH_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _published_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(mapping).split(":")[-2]) for mapping in service.get("ports", [])}


def test_compose_defines_kafka_postgres_worker_and_simulator(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"kafka", "postgres", "worker", "simulator"}


def test_contract_variables_are_all_settings_fields() -> None:
    assert CONTRACT_VARIABLES <= KNOWN_VARIABLES


def test_every_smsdispatch_variable_in_the_file_is_a_known_setting() -> None:
    used = set(re.findall(r"SMSDISPATCH_[A-Z0-9_]+", COMPOSE_FILE.read_text()))

    assert used, "the compose file wires no SMSDISPATCH_* variable at all"
    assert used <= KNOWN_VARIABLES, f"unknown: {sorted(used - KNOWN_VARIABLES)}"


def test_worker_gets_every_contract_variable(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]

    assert worker["command"] == ["worker"]
    assert set(_environment(worker)) >= CONTRACT_VARIABLES


def test_encryption_keys_come_from_the_users_environment_never_from_the_file(compose: dict[str, Any]) -> None:
    keys = _environment(compose["services"]["worker"])["SMSDISPATCH_ENCRYPTION_KEYS"]

    assert re.fullmatch(r"\$\{SMSDISPATCH_ENCRYPTION_KEYS:\?[^}]+\}", keys)


def test_kafka_is_one_kraft_node_for_host_and_containers(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = _environment(kafka)

    assert kafka["image"].startswith("apache/kafka:4.")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:29093"
    assert set(env["KAFKA_ADVERTISED_LISTENERS"].split(",")) == {"HOST://localhost:9092", "DOCKER://kafka:19092"}
    assert _published_ports(kafka) == {9092}
    factors = {k: v for k, v in env.items() if k.endswith(("_REPLICATION_FACTOR", "_MIN_ISR"))}
    assert set(factors) >= {"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"}
    assert set(factors.values()) == {"1"}


def test_worker_reaches_kafka_postgres_and_simulator_by_service_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = _environment(services["worker"])

    assert env["SMSDISPATCH_BROKER"] == "kafka://kafka:19092"
    database = urlsplit(env["SMSDISPATCH_DATABASE_URL"])
    postgres = _environment(services["postgres"])
    assert database.scheme == "postgresql+asyncpg"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert database.path == "/" + postgres["POSTGRES_DB"]
    assert env["SMSDISPATCH_TWILIO_BASE_URL"] == "http://simulator:8099"
    assert int(env["SMSDISPATCH_PARTITIONS"]) >= 1
    assert urlsplit(env["SMSDISPATCH_PUBLIC_URL"]).hostname == "worker"
    assert set(services["worker"]["depends_on"]) == {"kafka", "postgres", "simulator"}


def test_simulator_listens_on_8099_for_other_containers(compose: dict[str, Any]) -> None:
    simulator = compose["services"]["simulator"]
    command = simulator["command"]

    assert command[0] == "simulator"
    assert command[command.index("--port") + 1] == "8099"
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside its container only
    assert _published_ports(simulator) == {8099}


def test_every_published_port_is_bound_to_loopback_only(compose: dict[str, Any]) -> None:
    mappings = [str(m) for service in compose["services"].values() for m in service.get("ports", [])]

    assert mappings
    assert all(mapping.startswith("127.0.0.1:") for mapping in mappings)


def test_worker_and_simulator_are_built_from_the_python_311_dockerfile(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert compose["services"]["worker"]["build"] == compose["services"]["simulator"]["build"] == "."
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install .*\.", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["smsdispatch"]' in dockerfile
