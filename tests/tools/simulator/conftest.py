"""Shared accounts, a simulator running in a background thread (for the blocking twilio SDK), and small aiohttp
receivers that capture status callbacks and MSG91 delivery reports."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from smsdispatch.tools.simulator import RunningSimulator, SimAccount, SimulatorConfig, running_simulator

LIVE_SID = "AC" + "1" * 32
LIVE_TOKEN = "live-token-0123456789abcdef"
OTHER_SID = "AC" + "2" * 32
OTHER_TOKEN = "other-token-0123456789abcdef"
TEST_SID = "AC" + "3" * 32
TEST_TOKEN = "test-token-0123456789abcdef"
SUSPENDED_SID = "AC" + "4" * 32
SUSPENDED_TOKEN = "suspended-token-0123456789"
MAIN_KEY = "SK" + "a" * 32
MAIN_KEY_SECRET = "main-key-secret"
STANDARD_KEY = "SK" + "b" * 32
STANDARD_KEY_SECRET = "standard-key-secret"
SENDER = "+14155550100"
OTHER_SENDER = "+14155550199"
SERVICE = "MG" + "5" * 32
RECIPIENT = "+14155550123"
MSG91_REPORT_TOKEN = "report-token-5ecret"


def make_config(**overrides: Any) -> SimulatorConfig:
    """One live account (a number, a service, a Main and a Standard key), another live account, a suspended
    one and one test account; ``overrides`` replace SimulatorConfig fields."""
    settings: dict[str, Any] = {
        "accounts": [
            SimAccount(
                sid=LIVE_SID,
                token=LIVE_TOKEN,
                senders=[SENDER, SERVICE],
                api_keys={MAIN_KEY: MAIN_KEY_SECRET, STANDARD_KEY: STANDARD_KEY_SECRET},
                standard_api_keys=frozenset({STANDARD_KEY}),
                friendly_name="Live",
            ),
            SimAccount(sid=OTHER_SID, token=OTHER_TOKEN, senders=[OTHER_SENDER], account_type="Trial"),
            SimAccount(sid=SUSPENDED_SID, token=SUSPENDED_TOKEN, senders=[SENDER], status="suspended"),
        ],
        "test_accounts": [SimAccount(sid=TEST_SID, token=TEST_TOKEN)],
        "status_delay_ms": 20,
        "callback_retry_delay_ms": 20,
        "seed": 7,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)


def messages_url(base_url: str, account_sid: str = LIVE_SID) -> str:
    return f"{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"


async def post_message(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    form: dict[str, str],
    *,
    headers: dict[str, str] | None = None,
    account_sid: str = LIVE_SID,
) -> tuple[int, Any]:
    """A create, as Twilio's clients send it: the answer's status and JSON body."""
    url = messages_url(simulator.base_url, account_sid)
    async with http.post(url, data=form, headers=headers if headers is not None else LIVE_AUTH) as response:
        return response.status, await response.json()


async def fetch_message(http: aiohttp.ClientSession, simulator: RunningSimulator, sid: str) -> dict[str, Any]:
    """``GET …/Messages/{sid}.json`` on the live account."""
    async with http.get(f"{messages_url(simulator.base_url)[: -len('.json')]}/{sid}.json", headers=LIVE_AUTH) as r:
        body: dict[str, Any] = await r.json()
        return body


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(username, password)}


LIVE_AUTH = basic(LIVE_SID, LIVE_TOKEN)


class ThreadedSimulator:
    """A simulator on its own event loop in a daemon thread, so blocking clients can call it."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._ready: Future[RunningSimulator] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with running_simulator(self._config) as simulator:
                self._ready.set_result(simulator)
                await self._stop.wait()
        except Exception as exc:  # surface start-up failures to the waiting test
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def start(self) -> RunningSimulator:
        self._thread.start()
        return self._ready.result(timeout=10)

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` on the simulator's loop and return its result."""

        async def invoke() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def threaded_simulator() -> Iterator[tuple[ThreadedSimulator, RunningSimulator]]:
    runner = ThreadedSimulator(make_config())
    simulator = runner.start()
    yield runner, simulator
    runner.stop()


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(make_config()) as running:
        yield running


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass
class Callback:
    url: str
    form: dict[str, str]
    signature: str | None
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class CallbackReceiver:
    """Captures every POST; answers with ``statuses`` in turn (then 204)."""

    base_url: str = ""
    received: list[Callback] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"{self.base_url}/status?tenant=acme"

    async def handle(self, request: web.Request) -> web.Response:
        form = {name: str(value) for name, value in (await request.post()).items()}
        async with self._arrived:
            self.received.append(Callback(str(request.url), form, request.headers.get("X-Twilio-Signature")))
            self._arrived.notify_all()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)

    async def wait_for(self, count: int) -> list[Callback]:
        """Wait until ``count`` callbacks arrived (bounded, so a broken simulator fails instead of hanging)."""
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    def statuses_of(self, message_sid: str) -> list[str]:
        return [c.form["MessageStatus"] for c in self.received if c.form.get("MessageSid") == message_sid]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    capture = CallbackReceiver()
    app = web.Application()
    app.router.add_post("/status", capture.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    capture.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield capture
    finally:
        await runner.cleanup()


@dataclass
class ReportReceiver:
    """Captures every JSON POST (MSG91 delivery reports); answers with ``statuses`` in turn (then 200)."""

    base_url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        """The report URL, with the secret token in its path as the project's endpoint has it."""
        return f"{self.base_url}/msg91/report/{MSG91_REPORT_TOKEN}"

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        async with self._arrived:
            self.received.append(payload)
            self.content_types.append(request.content_type)
            self._arrived.notify_all()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until ``count`` reports arrived (bounded, so a broken simulator fails instead of hanging)."""
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


@pytest_asyncio.fixture
async def reports() -> AsyncIterator[ReportReceiver]:
    capture = ReportReceiver()
    app = web.Application()
    app.router.add_post("/msg91/report/{token}", capture.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    capture.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield capture
    finally:
        await runner.cleanup()
