"""TwilioHttp on real sockets: which transport failures mean "nothing was sent", for both transports.

These talk to throwaway servers on 127.0.0.1, because the point is what the real transports raise: the
production transport (aiohttp underneath) and httpx's own (httpcore) must agree on what a dropped connection, a
refused one and a silent server mean.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest
import pytest_asyncio

from smsdispatch.adapters.sms import nothing_was_sent
from smsdispatch.adapters.twilio import (
    AiohttpTransport,
    OutgoingSms,
    ProviderUnavailable,
    TwilioHttp,
    TwilioProvider,
    UnknownOutcome,
)
from smsdispatch.adapters.twilio.http_client import basic_authorization
from tests.accounts import token_config

from .conftest import TO_NUMBER, FakeClock, fast_policy

AfterRequest = Callable[[asyncio.StreamReader], Awaitable[None]]
TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport | None]] = {
    "aiohttp": lambda: None,  # TwilioHttp's own production transport
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
async def test_production_transport_reports_a_dropped_connection_as_a_protocol_error_not_a_connect_failure(
    hang_up_server: RawServer,
) -> None:
    async with TwilioHttp(hang_up_server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await http.request("POST", "/x", authorization=basic_authorization("AC1", "t"), data={"a": "b"})

    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
    assert not nothing_was_sent(caught.value)


def test_a_connect_timeout_caused_by_a_dropped_connection_is_not_proof_that_nothing_was_sent() -> None:
    # httpx-aiohttp's mapping: every aiohttp connection error becomes ConnectTimeout. The cause decides.
    dropped = httpx.ConnectTimeout("Server disconnected")
    dropped.__cause__ = aiohttp.ServerDisconnectedError()
    refused = httpx.ConnectTimeout("Cannot connect")
    refused.__cause__ = aiohttp.ConnectionTimeoutError()

    assert not nothing_was_sent(dropped)
    assert nothing_was_sent(refused)


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
            authorization = basic_authorization("user", "pass")
            responses = await asyncio.gather(
                *(http.request("GET", "/x", authorization=authorization) for _ in range(10))
            )

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


def test_base_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="must not carry a user name or password") as caught:
        TwilioHttp("https://user:s3cret@twilio-proxy.example.com")

    assert "s3cret" not in str(caught.value)


@pytest.mark.asyncio
async def test_cookies_twilio_sets_are_neither_kept_nor_sent_back() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={}, headers={"Set-Cookie": "session=abc; Path=/"})

    async with TwilioHttp("https://api.twilio.test", transport=httpx.MockTransport(handler)) as http:
        for _ in range(2):
            await http.request("GET", "/2010-04-01/Accounts.json", authorization=basic_authorization("AC1", "t"))

    assert [request.headers.get("Cookie") for request in seen] == [None, None]
    assert [str(request.url) for request in seen] == ["https://api.twilio.test/2010-04-01/Accounts.json"] * 2


def test_basic_authorization_is_the_header_httpx_basic_auth_sends() -> None:
    request = httpx.Request("GET", "https://api.twilio.test/")
    expected = next(httpx.BasicAuth("AC1", "s3cret:with colon").auth_flow(request)).headers["Authorization"]

    assert basic_authorization("AC1", "s3cret:with colon") == expected


@pytest.mark.asyncio
async def test_requests_keep_the_base_urls_path_and_a_next_page_uris_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async with TwilioHttp("https://proxy.test/twilio/", transport=httpx.MockTransport(handler)) as http:
        authorization = basic_authorization("AC1", "t")
        await http.request("GET", "/2010-04-01/Messages.json?Page=1&PageToken=PA1", authorization=authorization)
        await http.request("GET", "/2010-04-01/Messages.json", authorization=authorization, params={"To": "+1 415"})
        await http.request("POST", "/2010-04-01/Messages.json", authorization=authorization, data={"Body": "a&b"})

    assert [str(request.url) for request in seen] == [
        "https://proxy.test/twilio/2010-04-01/Messages.json?Page=1&PageToken=PA1",
        "https://proxy.test/twilio/2010-04-01/Messages.json?To=%2B1+415",
        "https://proxy.test/twilio/2010-04-01/Messages.json",
    ]
    assert seen[2].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen[2].content == b"Body=a%26b"
    assert {request.headers["Authorization"] for request in seen} == {authorization}


@pytest.mark.asyncio
async def test_waiting_longer_than_the_pool_timeout_for_a_connection_sends_nothing_and_says_so() -> None:
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    timeout = httpx.Timeout(connect=1.0, read=5.0, write=1.0, pool=0.2)
    async with await asyncio.start_server(hold, "127.0.0.1", 0) as server:
        host, port = server.sockets[0].getsockname()[:2]
        async with TwilioHttp(f"http://{host}:{port}", max_connections=1, timeout=timeout) as http:
            authorization = basic_authorization("AC1", "t")
            first = asyncio.create_task(http.request("GET", "/held", authorization=authorization))
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.TransportError) as caught:
                await http.request("POST", "/waiting", authorization=authorization, data={"Body": "x"})
            release.set()
            answered = await first

    assert nothing_was_sent(caught.value)
    assert answered.status_code == 200


@pytest.mark.asyncio
async def test_production_transport_sends_one_user_agent_and_asks_for_no_compression() -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}')
        await writer.drain()
        writer.close()

    async with await asyncio.start_server(answer, "127.0.0.1", 0) as server:
        host, port = server.sockets[0].getsockname()[:2]
        async with TwilioHttp(f"http://{host}:{port}") as http:
            response = await http.request("GET", "/x", authorization=basic_authorization("AC1", "t"))

    lines = [line.lower() for line in heads[0].split(b"\r\n")]
    assert response.json() == {"ok": True}
    assert [line for line in lines if line.startswith(b"user-agent:")] == [b"user-agent: smsdispatch/0.1 (+httpx)"]
    assert not [line for line in lines if line.startswith(b"accept-encoding:")]
    assert b"authorization: " + basic_authorization("AC1", "t").lower().encode() in lines


def test_the_production_transport_verifies_twilios_certificate_and_host_name_by_default() -> None:
    context = AiohttpTransport(max_connections=1)._ssl

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.asyncio
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_production_transports_answers_read_as_httpxs_own_do_compressed_or_not(encoding: str) -> None:
    document = b'{"sid": "SM1", "status": "queued", "body": "caf\xc3\xa9"}'
    body = gzip.compress(document) if encoding == "gzip" else document
    head = f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if encoding == "gzip":
        head += "Content-Encoding: gzip\r\n"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        writer.close()

    responses: dict[str, httpx.Response] = {}
    async with await asyncio.start_server(answer, "127.0.0.1", 0) as server:
        host, port = server.sockets[0].getsockname()[:2]
        for name, make in TRANSPORTS.items():
            async with TwilioHttp(f"http://{host}:{port}", transport=make()) as http:
                responses[name] = await http.request("GET", "/x", authorization=basic_authorization("AC1", "t"))

    ours, theirs = responses["aiohttp"], responses["httpcore"]
    assert ours.json() == theirs.json() == json.loads(document)
    assert ours.content == theirs.content == document
    assert ours.status_code == theirs.status_code == 201
    assert ours.headers["content-length"] == theirs.headers["content-length"] == str(len(body))
    assert (ours.is_stream_consumed, ours.is_closed) == (theirs.is_stream_consumed, theirs.is_closed) == (True, True)
    assert await ours.aread() == document
