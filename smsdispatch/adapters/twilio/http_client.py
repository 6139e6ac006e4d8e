"""The one pooled HTTP client every tenant's Twilio calls share, and how to read its transport failures.

Production traffic goes through ``httpx_aiohttp.AiohttpTransport``: httpx's own pool tops out far below
Twilio's ceiling of ~100 requests in flight per account (docs/reference/http-client.md, encode/httpx#3215). The
transport is injectable so unit tests pass ``httpx.MockTransport``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Self

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from smsdispatch.contract.settings import DEFAULT_TWILIO_BASE_URL

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)
_USER_AGENT = "smsdispatch/0.1 (+httpx)"


class TwilioHttp:
    """One ``httpx.AsyncClient`` per process, shared by every :class:`TwilioProvider`.

    ``base_url`` is Twilio's own unless given (the worker passes ``SMSDISPATCH_TWILIO_BASE_URL``).
    ``max_connections`` is the concurrency cap: the aiohttp connector never opens more sockets than that, so
    requests beyond it wait for a free connection (at most ``timeout.pool`` seconds, after which nothing was
    sent and the call may be retried).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_TWILIO_BASE_URL,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = base_url
        _check_base_url(url)
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if transport is None:
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            transport = AiohttpTransport(limits=limits)
        self._client = httpx.AsyncClient(
            base_url=url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
        )
        # Twilio sets no cookies we need, and httpx stores every response's in a cookie jar through urllib's
        # request/response adapters: 14% of the worker's HTTP CPU, measured with py-spy. No public switch.
        self._client._cookies = _NoCookies()
        # Absolute URLs by path, parsed once: httpx re-parses and merges a relative path on every request
        # (12% of the HTTP CPU). Paths are per account and endpoint, so there are few.
        self._urls: dict[str, httpx.URL] = {}

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: httpx.Auth,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (no retries here) and return the response with its body read."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            url = self._urls[path] = self._client._merge_url(path)
        return await self._client.request(method, url, auth=auth, data=data, params=params)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"TwilioHttp(base_url={self.base_url!r})"


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing: the client never sends or stores cookies."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def nothing_was_sent(error: httpx.TransportError) -> bool:
    """True when ``error`` happened before any byte of the request could reach the server.

    httpx-aiohttp maps *every* ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``, including
    ``ServerDisconnectedError`` and resets that happen after the request went out, so with that transport the
    httpx type alone would make a lost answer look like a safe retry (a duplicate SMS). Its original aiohttp
    error rides along as ``__cause__``: only a failure to connect, or a timeout waiting for a connection, is
    proof that nothing was sent. (aiohttp itself re-sends a request on a stale keep-alive connection only
    for idempotent methods, never a POST, so no create is ever repeated below us either.)
    """
    cause = error.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _check_base_url(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        # The URL itself is left out of the message: a mistyped one may carry user:password@.
        raise ValueError("The Twilio base URL must be an http(s) URL such as https://api.twilio.com.")
