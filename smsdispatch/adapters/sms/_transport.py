"""httpx's transport interface over one aiohttp session: the production wire under :class:`TwilioHttp`.

Why not ``httpx_aiohttp.AiohttpTransport``: measured against the simulator (benchmarks/provider_throughput.py),
its per-request work (a new ``ClientTimeout``, httpx ``Headers`` copied key by key into aiohttp's, the answer
re-streamed through an httpx byte stream) cost more CPU than the create itself, and it maps *every*
``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``, a dropped answer included (the duplicate-SMS
trap :func:`nothing_was_sent` guards against). This one:

- reads each answer whole (Twilio's are small JSON documents) and hands httpx a finished ``Response``;
- maps aiohttp's failures by what they prove, keeping the aiohttp error as ``__cause__``:

  ========================================================  ===========================  =================
  aiohttp                                                   httpx                        request sent?
  ========================================================  ===========================  =================
  ``ConnectionTimeoutError`` (no connection in time)        ``ConnectTimeout``           no
  ``ClientConnectorError`` (refused, DNS, TLS handshake)     ``ConnectError``             no
  ``SocketTimeoutError`` (no answer in time)                 ``ReadTimeout``              maybe
  ``ServerDisconnectedError``, ``ClientResponseError``       ``RemoteProtocolError``      maybe
  any other ``ClientError`` (reset, payload error, …)        ``ReadError``                maybe
  ========================================================  ===========================  =================

aiohttp never re-sends a POST on a stale keep-alive connection (only idempotent methods), so nothing below us
repeats a create either.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import httpx

#: Seconds an idle keep-alive connection is kept; Twilio's edge closes idle ones after about a minute.
KEEPALIVE_SECONDS = 30.0


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one lazily opened ``aiohttp.ClientSession`` of at most ``max_connections``
    sockets; requests beyond that wait for a free one for up to the request's ``pool`` + ``connect`` timeouts
    (aiohttp has one budget for waiting and connecting)."""

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_connections = max_connections
        # httpx's own default: certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set.
        self._ssl = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session if self._session is not None else self._open()
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=self._timeout(request.extensions.get("timeout") or {}),
            ) as answer:
                body = await answer.read()
        except aiohttp.ClientError as error:
            raise _as_httpx(error, request) from error
        if "Content-Encoding" in answer.headers:
            # Compressed though nobody asked: httpx's read decodes it.
            return httpx.Response(answer.status, headers=answer.raw_headers, content=body, request=request)
        return _read_response(answer.status, answer.raw_headers, body, request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        # Opened on first use, inside the running loop: an aiohttp session belongs to the loop it was made on.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS, ssl=self._ssl
        )
        # Our own User-Agent only, and no Accept-Encoding: Twilio's answers are a few hundred bytes of JSON,
        # not worth a gzip round trip of CPU on both ends.
        skipped = ("User-Agent", "Accept-Encoding")
        self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=skipped)
        return self._session

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
        found = self._timeouts.get(key)
        if found is None:
            # aiohttp's ``connect`` covers waiting for a pooled connection plus connecting; ``sock_connect`` the
            # connect alone; ``sock_read`` each wait for answer bytes. There is no write timeout in aiohttp.
            pool, connect, read = key
            waiting = None if pool is None or connect is None else pool + connect
            found = aiohttp.ClientTimeout(total=None, connect=waiting, sock_connect=connect, sock_read=read)
            self._timeouts[key] = found
        return found


def _read_response(status: int, headers: Any, body: bytes, request: httpx.Request) -> httpx.Response:
    """The ``Response`` that ``httpx.Response(content=body)`` builds for a body that needs no decoding, read and
    closed the same, without running the body through httpx's decoder and chunker generators: 12.5 against
    2.3 µs per answer (httpx 0.29). ``_content`` is where httpx's own ``read`` keeps the body."""
    response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)
    response._content = body
    response.is_stream_consumed = True
    response.is_closed = True
    return response


def _as_httpx(error: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    detail = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(detail, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(detail, request=request)
    if isinstance(error, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(detail, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(detail, request=request)
    if isinstance(error, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(detail, request=request)
    return httpx.ReadError(detail, request=request)


def nothing_was_sent(error: httpx.TransportError) -> bool:
    """True when ``error`` happened before any byte of the request could reach the server.

    The aiohttp error under an httpx one (``__cause__``) decides when there is one: only a failure to connect, or
    a timeout waiting for a connection, is proof that nothing was sent. That holds whichever aiohttp transport
    was injected; httpx-aiohttp's, for one, maps *every* ``aiohttp.ClientConnectionError`` to
    ``httpx.ConnectTimeout``, a connection dropped after the request went out included, so its httpx type
    alone would make a lost answer look like a safe retry (a duplicate SMS). Otherwise the httpx type decides.
    """
    cause = error.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
