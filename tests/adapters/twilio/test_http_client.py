"""TwilioHttp on real sockets: which transport failures mean "nothing was sent", for both transports.

These talk to throwaway servers on 127.0.0.1, because the point is what the real transports raise: the
production transport (httpx-aiohttp) maps a dropped connection to ``httpx.ConnectTimeout``, the same type as a
failed connect, and only the aiohttp cause tells them apart.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest
import pytest_asyncio
from httpx_aiohttp import AiohttpTransport

from smsdispatch.adapters.twilio import OutgoingSms, ProviderUnavailable, TwilioHttp, TwilioProvider, UnknownOutcome
from smsdispatch.adapters.twilio.http_client import nothing_was_sent
from tests.accounts import token_config

from .conftest import TO_NUMBER, FakeClock, fast_policy

AfterRequest = Callable[[asyncio.StreamReader], Awaitable[None]]
TRANSPORTS = {
    "aiohttp": lambda: AiohttpTransport(),
    "httpcore": lambda: httpx.AsyncHTTPTransport(),
}


class RawServer:
    """A TCP server on 127.0.0.1 that counts the HTTP requests it reads, then does what the test says."""

    def __init__(self, after_request: AfterRequest) -> None:
        self.requests = 0
        self._after_request = after_request
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            self.requests += 1
            await self._after_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


@pytest_asyncio.fixture
async def hang_up_server() -> AsyncIterator[RawServer]:
    async def hang_up(reader: asyncio.StreamReader) -> None:
        return None  # close without a byte of answer

    server = RawServer(hang_up)
    async with await asyncio.start_server(server.handle, "127.0.0.1", 0) as server.server:
        yield server


@pytest_asyncio.fixture
async def silent_server() -> AsyncIterator[RawServer]:
    async def stay_silent(reader: asyncio.StreamReader) -> None:
        await reader.read()  # never answer; return when the client gives up and closes

    server = RawServer(stay_silent)
    async with await asyncio.start_server(server.handle, "127.0.0.1", 0) as server.server:
        yield server


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def provider_on(http: TwilioHttp, clock: FakeClock) -> TwilioProvider:
    return TwilioProvider(token_config(), http, fast_policy(clock, max_attempts=3))


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_refused_connection_is_retried_then_raises_provider_unavailable(transport: str, clock: FakeClock) -> None:
    async with TwilioHttp(closed_port_url(), transport=TRANSPORTS[transport]()) as http:
        with pytest.raises(ProviderUnavailable) as caught:
            await provider_on(http, clock).send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert caught.value.attempts == 3
    assert len(clock.sleeps) == 2
    raw = caught.value.__cause__
    assert isinstance(raw, httpx.ConnectError | httpx.ConnectTimeout)
    if transport == "aiohttp":
        assert isinstance(raw.__cause__, aiohttp.ClientConnectorError)


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_connection_dropped_after_sending_is_an_unknown_outcome_sent_once(
    transport: str, clock: FakeClock, hang_up_server: RawServer
) -> None:
    async with TwilioHttp(hang_up_server.url, transport=TRANSPORTS[transport]()) as http:
        with pytest.raises(UnknownOutcome) as caught:
            await provider_on(http, clock).send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert hang_up_server.requests == 1
    assert clock.sleeps == []
    raw = caught.value.__cause__
    assert isinstance(raw, httpx.TransportError)
    assert not nothing_was_sent(raw)


@pytest.mark.asyncio
async def test_aiohttp_transport_reports_a_dropped_connection_as_connect_timeout(hang_up_server: RawServer) -> None:
    # The trap nothing_was_sent() exists for: judged by its httpx type alone this would be a safe retry.
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await client.post(hang_up_server.url + "/x", data={"a": "b"})

    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
    assert not nothing_was_sent(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_read_timeout_is_an_unknown_outcome_sent_once(
    transport: str, clock: FakeClock, silent_server: RawServer
) -> None:
    timeout = httpx.Timeout(connect=2.0, read=0.1, write=2.0, pool=2.0)
    async with TwilioHttp(silent_server.url, timeout=timeout, transport=TRANSPORTS[transport]()) as http:
        with pytest.raises(UnknownOutcome) as caught:
            await provider_on(http, clock).send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert silent_server.requests == 1
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@pytest.mark.asyncio
async def test_default_transport_never_opens_more_connections_than_the_cap() -> None:
    peers: set[tuple[str, int]] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.add(writer.get_extra_info("peername"))
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(0.01)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with await asyncio.start_server(answer, "127.0.0.1", 0) as server:
        host, port = server.sockets[0].getsockname()[:2]
        async with TwilioHttp(f"http://{host}:{port}", max_connections=2) as http:
            auth = httpx.BasicAuth("user", "pass")
            responses = await asyncio.gather(*(http.request("GET", "/x", auth=auth) for _ in range(10)))

    assert [response.status_code for response in responses] == [200] * 10
    assert 1 <= len(peers) <= 2


def test_base_url_is_twilios_own_unless_given_and_the_environment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSDISPATCH_TWILIO_BASE_URL", "http://127.0.0.1:8099")  # the caller's to pass, not ours

    http = TwilioHttp(transport=httpx.MockTransport(lambda request: httpx.Response(200)))

    assert http.base_url == "https://api.twilio.com"


@pytest.mark.parametrize("url", ["ftp://api.twilio.com", "api.twilio.com", "https://user:s3cret@"])
def test_base_url_that_is_not_http_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="http") as caught:
        TwilioHttp(url)

    assert "s3cret" not in str(caught.value)


@pytest.mark.asyncio
async def test_cookies_twilio_sets_are_neither_kept_nor_sent_back() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={}, headers={"Set-Cookie": "session=abc; Path=/"})

    async with TwilioHttp("https://api.twilio.test", transport=httpx.MockTransport(handler)) as http:
        for _ in range(2):
            await http.request("GET", "/2010-04-01/Accounts.json", auth=httpx.BasicAuth("AC1", "t"))

    assert [request.headers.get("Cookie") for request in seen] == [None, None]
    assert [str(request.url) for request in seen] == ["https://api.twilio.test/2010-04-01/Accounts.json"] * 2
