"""A running system for integration tests: the session's Kafka broker, a simulator process, a worker process.

Tenants are registered with the records ``smsdispatch tenants set`` makes (its own code builds and verifies them,
against the stack's simulator), published in one batch through the client: the CLI's own I/O, which reads the
whole of ``sms.tenants`` each time, is tested in tests/cli. Each stack is its own deployment on
the session's broker: its own ``SMSDISPATCH_APP_ID`` (consumer group and internal topics), a group that starts
where the shared topics end when the stack is made (:func:`start_group_at_end`), and ids with a per-stack
suffix, so stacks never read each other's records nor replay each other's changelogs. The worker's public URL is
its own web server, so the simulator's signed delivery callbacks flow back through the status receiver into
``sms.status`` and the dispatch log.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.cli import build_parser
from smsdispatch.cli import main as cli
from smsdispatch.cli.tenants import record_for_add, record_for_set
from smsdispatch.client import publish_tenants
from smsdispatch.contract import topics
from smsdispatch.contract.settings import Settings, bootstrap_servers
from smsdispatch.runtime.topics import ensure_topics
from smsdispatch.tools.simulator import random_account_sid, random_api_key_sid
from smsdispatch.tools.testing.kafka import free_ports
from smsdispatch.tools.testing.processes import ManagedProcess, simulator_process, worker_process

#: The levels of the worker log lines a failing test's report repeats: WARNING and above.
_NOTABLE = ("[WARNING]", "[ERROR]", "[CRITICAL]")

MAGIC_FROM_OK = "+15005550006"
LIVE_NUMBER = "+14155550100"
#: The Flow templates of the simulator's MSG91 account in a stack made with ``msg91=True``: the platform's, and
#: one more a request may name in ``provider_options``.
MSG91_TEMPLATE = "tpl_platform_sms"
MSG91_OTHER_TEMPLATE = "tpl_order_update"


@dataclass
class Stack:
    broker_url: str
    #: SMSDISPATCH_APP_ID of the stack's workers: their consumer group, and the prefix of their changelogs.
    app_id: str
    simulator_url: str
    worker_url: str
    database_url: str
    env: dict[str, str]
    worker: ManagedProcess
    simulator: ManagedProcess
    suffix: str
    base: Path
    secrets: list[str] = field(default_factory=list)
    tenants: dict[str, str] = field(default_factory=dict)
    live_account: tuple[str, str] = ("", "")
    #: Workers started with :meth:`add_worker`, besides ``worker``.
    more_workers: list[ManagedProcess] = field(default_factory=list)

    def tenant(self, name: str) -> str:
        return self.tenants[name]

    def register(self, name: str, *args: str) -> str:
        """What ``smsdispatch tenants set NAME-SUFFIX ARGS…`` publishes; returns the tenant_id."""
        seed_tenants(self, {name: list(args)})
        return self.tenants[name]

    def register_platform(self, name: str, *args: str) -> str:
        """What ``smsdispatch tenants add NAME-SUFFIX ARGS…`` publishes (no provider of its own); the tenant_id."""
        seed_tenants(self, {name: list(args)}, verb="add")
        return self.tenants[name]

    def register_live(self, name: str, account: tuple[str, str] | None = None) -> str:
        return self.register_live_many([name], account)[0]

    def register_live_many(self, names: Sequence[str], account: tuple[str, str] | None = None) -> list[str]:
        """Register several tenants on one live account (the stack's by default) in one batch; their ids."""
        sid, token = account or self.live_account
        seed_tenants(
            self, {name: ["--account-sid", sid, "--auth-token", token, "--from", LIVE_NUMBER] for name in names}
        )
        return [self.tenants[name] for name in names]

    def add_worker(self, start: bool = True) -> ManagedProcess:
        """Another worker in the same group: its own web port and data directory, the same settings."""
        [web_port] = free_ports(1)
        n = len(self.more_workers) + 2
        worker = worker_process(
            env=self.env, web_port=web_port, data_dir=self.base / f"worker{n}", log_path=self.base / f"worker{n}.log"
        )
        self.more_workers.append(worker)
        if start:
            worker.start(timeout=90)
        return worker

    def workers(self) -> list[ManagedProcess]:
        return [self.worker, *self.more_workers]

    def restart_worker(self, crash: bool = False) -> None:
        """Stop the worker (SIGKILL when ``crash``) and start a new one with the same settings."""
        if crash:
            self.worker.kill()
        else:
            self.worker.stop()
        self.worker.start(timeout=90)


def run_cli(stack: Stack, *args: str) -> int:
    """``smsdispatch ARGS…`` with the stack's settings; returns the exit code."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, value in stack.env.items():
            monkeypatch.setenv(key, value)
        # In a thread of its own: the verb runs its own event loop, and a test's loop may be running here.
        with ThreadPoolExecutor(1) as thread:
            return int(thread.submit(cli, list(args)).result())


def start_group_at_end(broker_url: str, group_id: str, partitions: int) -> None:
    """Commit, for the new consumer group ``group_id``, the end of ``sms.requested`` and the outcome topics: its
    workers start after what earlier stacks published there. ``sms.tenants`` is left out: the worker's tenant
    table must read the tenants registered before it starts."""

    async def commit_ends() -> None:
        names = (topics.REQUESTED, *topics.OUTCOME_TOPICS)
        every = [TopicPartition(name, partition) for name in names for partition in range(partitions)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(broker_url), group_id=group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(every)
            await consumer.commit(await consumer.end_offsets(every))
        finally:
            await consumer.stop()

    # In a thread of its own, like run_cli: the caller may be inside a running event loop.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, commit_ends()).result()


def seed_tenants(stack: Stack, tenants: dict[str, list[str]], verb: str = "set") -> None:
    """Publish, in one batch, the record ``smsdispatch tenants VERB NAME-SUFFIX ARGS…`` would for each name (VERB
    ``set``, or ``add`` for a tenant on the platform default); the stack's ``tenants`` maps each name to its
    tenant_id."""
    parser = build_parser()
    settings = Settings(broker=stack.broker_url, twilio_base_url=stack.env["SMSDISPATCH_TWILIO_BASE_URL"])
    keyring = Keyring.from_value(stack.env["SMSDISPATCH_ENCRYPTION_KEYS"])
    ids = {name: f"{name}-{stack.suffix}" for name in tenants}

    async def seed() -> None:
        records = {}
        for name, args in tenants.items():
            parsed = parser.parse_args(["tenants", verb, ids[name], *args])
            if verb == "add":
                records[ids[name]] = record_for_add(parsed, keyring, None).record
            else:
                records[ids[name]] = (await record_for_set(parsed, settings, keyring, None)).record
        await ensure_topics(stack.broker_url, int(stack.env.get("SMSDISPATCH_PARTITIONS", "8")))
        await publish_tenants(stack.broker_url, records)

    with ThreadPoolExecutor(1) as thread:  # the caller may be inside a running event loop
        thread.submit(asyncio.run, seed()).result()
    stack.tenants.update(ids)


@contextmanager
def running_stack(
    broker_url: str,
    base: Path,
    *,
    simulator_args: Sequence[str] = (),
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    accounts: Sequence[tuple[str, str]] = (),
    callbacks: bool = True,
    msg91: bool = False,
) -> Iterator[Stack]:
    """A simulator, the standard tenants and one worker. ``accounts`` are extra live accounts (SID, token) the
    simulator knows, with the live number; ``env`` adds worker settings; without ``callbacks`` the worker has
    no SMSDISPATCH_PUBLIC_URL, so Twilio is asked for no status callbacks. With ``msg91`` the platform default is
    the simulator's MSG91 account, whose delivery reports go to the first worker's report endpoint."""
    suffix = uuid.uuid4().hex[:8]
    app_id = f"it-{suffix}"
    live_sid, test_sid = random_account_sid(), random_account_sid()
    live_token, test_token = f"livetoken{uuid.uuid4().hex}", f"testtoken{uuid.uuid4().hex}"
    key_sid, key_secret = random_api_key_sid(), f"keysecret{uuid.uuid4().hex}"
    service_sid = "MG" + uuid.uuid4().hex
    sim_port, web_port = free_ports(2)
    accounts = [
        *("--account", f"{live_sid}:{live_token}:{LIVE_NUMBER},{service_sid}"),
        *("--test-account", f"{test_sid}:{test_token}"),
        *("--api-key", f"{live_sid}:{key_sid}:{key_secret}"),
        *(arg for sid, token in accounts for arg in ("--account", f"{sid}:{token}:{LIVE_NUMBER}")),
    ]
    authkey, report_token = f"m91key{uuid.uuid4().hex}", f"m91report{uuid.uuid4().hex}"
    platform = _msg91_settings(sim_port, authkey, report_token) if msg91 else {}
    report_url = f"http://127.0.0.1:{web_port}/msg91/report/{report_token}"
    msg91_account = ["--msg91", f"{authkey}:{MSG91_TEMPLATE},{MSG91_OTHER_TEMPLATE}", "--msg91-report-url", report_url]
    simulator = simulator_process(
        port=sim_port,
        args=[*accounts, *(msg91_account if msg91 else []), "--status-delay-ms", "100", *simulator_args],
        log_path=base / "simulator.log",
    )
    database_url = database_url or f"sqlite+aiosqlite:///{base / 'dispatch.db'}"
    env = {
        "SMSDISPATCH_BROKER": broker_url,
        "SMSDISPATCH_ENCRYPTION_KEYS": generate_key(),
        "SMSDISPATCH_TWILIO_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SMSDISPATCH_DATABASE_URL": database_url,
        "SMSDISPATCH_APP_ID": app_id,
        **({"SMSDISPATCH_PUBLIC_URL": f"http://127.0.0.1:{web_port}"} if callbacks else {}),
        **platform,
        **(env or {}),
    }
    worker = worker_process(env=env, web_port=web_port, data_dir=base / "worker", log_path=base / "worker.log")
    stack = Stack(
        broker_url=broker_url,
        app_id=app_id,
        simulator_url=f"http://127.0.0.1:{sim_port}",
        worker_url=f"http://127.0.0.1:{web_port}",
        database_url=database_url,
        env=env,
        worker=worker,
        simulator=simulator,
        suffix=suffix,
        base=base,
        live_account=(live_sid, live_token),
        secrets=[live_token, test_token, key_secret, env["SMSDISPATCH_ENCRYPTION_KEYS"], authkey, report_token],
    )
    simulator.start()
    try:
        live = ["--account-sid", live_sid, "--auth-token", live_token]
        test = ["--account-sid", test_sid, "--auth-token", test_token]
        apikey = ["--account-sid", live_sid, "--api-key-sid", key_sid, "--api-key-secret", key_secret]
        standard = {
            "live": [*live, "--from", LIVE_NUMBER],
            "service": [*live, "--from", service_sid],
            "apikey": [*apikey, "--from", LIVE_NUMBER],
            "test": [*test, "--from", MAGIC_FROM_OK],
            **{
                f"from{magic[-2:]}": [*test, "--from", magic]
                for magic in ("+15005550001", "+15005550007", "+15005550008")
            },
            "unverified": [*live, "--from", LIVE_NUMBER, "--no-verify"],
        }
        seed_tenants(stack, standard)
        seed_tenants(stack, {"platform": []}, verb="add")
        start_group_at_end(broker_url, app_id, int(env.get("SMSDISPATCH_PARTITIONS", "8")))
        worker.start(timeout=90)
        yield stack
    finally:
        for running in stack.workers():
            running.stop()
        simulator.stop()


def _msg91_settings(sim_port: int, authkey: str, report_token: str) -> dict[str, str]:
    return {
        "SMSDISPATCH_DEFAULT_PROVIDER": "msg91",
        "SMSDISPATCH_MSG91_AUTHKEY": authkey,
        "SMSDISPATCH_MSG91_TEMPLATE_ID": MSG91_TEMPLATE,
        "SMSDISPATCH_MSG91_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SMSDISPATCH_MSG91_REPORT_TOKEN": report_token,
    }


@pytest.fixture(scope="module")
def stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(kafka_broker_url, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test that ran a stack reports what each of its workers was doing: a CI run keeps only its output,
    and "no outcome within 60 s" says nothing about which worker held the record, or why."""
    report = yield
    if report.when == "call" and report.failed:
        for stack in {id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Stack)}.values():
            for process in stack.workers():
                report.sections.append((f"worker {process.base_url}", _worker_state(process)))
    return report


def _worker_state(process: ManagedProcess) -> str:
    """Whether it runs, its /ready and pipeline gauges, its last warnings and its last lines."""
    lines = [f"running: {process.running()}, log: {process.log_path}"]
    for path in ("/ready", "/health"):
        lines.append(f"{path}: {_get(process.base_url + path)}")
    metrics = _get(process.base_url + "/metrics")
    lines += [
        line
        for line in metrics.splitlines()
        if line.startswith(("smsdispatch_pipeline_records", "smsdispatch_in_flight"))
    ]
    text = process.log_text().splitlines()
    lines += ["last warnings:", *[line for line in text if any(mark in line for mark in _NOTABLE)][-12:]]
    lines += ["last lines:", *text[-8:]]
    return "\n".join(lines)


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback
            body: bytes = response.read()
    except urllib.error.HTTPError as refused:  # /ready answers 503 while not ready
        body = refused.read()
    except OSError as exc:
        return repr(exc)
    text = body.decode(errors="replace")
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return text
