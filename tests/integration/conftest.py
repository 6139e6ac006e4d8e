"""A running system for integration tests: the session's Kafka broker, a simulator process, a worker process.

Tenants are registered through the real ``smsdispatch tenants set`` verb. Ids get a per-module suffix so that
modules sharing the session's broker (and its fixed topic names) never read each other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smsdispatch.cli import main as cli
from smsdispatch.crypto import generate_key
from smsdispatch.simulator import random_account_sid, random_api_key_sid
from smsdispatch.testing.kafka import free_ports
from smsdispatch.testing.processes import ManagedProcess, simulator_process, worker_process

MAGIC_FROM_OK = "+15005550006"


@dataclass
class Stack:
    broker_url: str
    simulator_url: str
    env: dict[str, str]
    worker: ManagedProcess
    simulator: ManagedProcess
    suffix: str
    secrets: list[str] = field(default_factory=list)
    tenants: dict[str, str] = field(default_factory=dict)

    def tenant(self, name: str) -> str:
        return self.tenants[name]


def _register(stack: Stack, monkeypatch: pytest.MonkeyPatch, name: str, *args: str) -> None:
    tenant_id = f"{name}-{stack.suffix}"
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    assert cli(["tenants", "set", tenant_id, *args]) == 0, f"registering {tenant_id} failed"
    stack.tenants[name] = tenant_id


@pytest.fixture(scope="module")
def stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("stack")
    suffix = uuid.uuid4().hex[:8]
    live_sid, test_sid = random_account_sid(), random_account_sid()
    live_token, test_token = f"livetoken{uuid.uuid4().hex}", f"testtoken{uuid.uuid4().hex}"
    key_sid, key_secret = random_api_key_sid(), f"keysecret{uuid.uuid4().hex}"
    service_sid = "MG" + uuid.uuid4().hex
    sim_port, web_port = free_ports(2)
    simulator = simulator_process(
        port=sim_port,
        args=[
            "--account",
            f"{live_sid}:{live_token}:+14155550100,{service_sid}",
            "--test-account",
            f"{test_sid}:{test_token}",
            "--api-key",
            f"{live_sid}:{key_sid}:{key_secret}",
            "--status-delay-ms",
            "100",
        ],
        log_path=base / "simulator.log",
    ).start()
    env = {
        "SMSDISPATCH_BROKER": kafka_broker_url,
        "SMSDISPATCH_ENCRYPTION_KEYS": generate_key(),
        "SMSDISPATCH_TWILIO_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SMSDISPATCH_DATABASE_URL": f"sqlite+aiosqlite:///{base / 'dispatch.db'}",
    }
    worker = worker_process(env=env, web_port=web_port, data_dir=base / "worker", log_path=base / "worker.log")
    stack = Stack(
        broker_url=kafka_broker_url,
        simulator_url=f"http://127.0.0.1:{sim_port}",
        env=env,
        worker=worker,
        simulator=simulator,
        suffix=suffix,
        secrets=[live_token, test_token, key_secret, env["SMSDISPATCH_ENCRYPTION_KEYS"]],
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        _register(
            stack, monkeypatch, "live", "--account-sid", live_sid, "--auth-token", live_token, "--from", "+14155550100"
        )
        _register(
            stack, monkeypatch, "service", "--account-sid", live_sid, "--auth-token", live_token, "--from", service_sid
        )
        _register(
            stack,
            monkeypatch,
            "apikey",
            "--account-sid",
            live_sid,
            "--api-key-sid",
            key_sid,
            "--api-key-secret",
            key_secret,
            "--from",
            "+14155550100",
        )
        _register(
            stack, monkeypatch, "test", "--account-sid", test_sid, "--auth-token", test_token, "--from", MAGIC_FROM_OK
        )
        for magic_from in ("+15005550001", "+15005550007", "+15005550008"):
            _register(
                stack,
                monkeypatch,
                f"from{magic_from[-2:]}",
                "--account-sid",
                test_sid,
                "--auth-token",
                test_token,
                "--from",
                magic_from,
            )
        _register(
            stack,
            monkeypatch,
            "unverified",
            "--account-sid",
            live_sid,
            "--auth-token",
            live_token,
            "--from",
            "+14155550100",
            "--no-verify",
        )
    worker.start(timeout=90)
    try:
        yield stack
    finally:
        worker.stop()
        simulator.stop()
