"""The one pooled HTTP client every tenant's Twilio calls share, and how to read its transport failures.

Production traffic goes through an httpx transport on aiohttp (:mod:`._transport`): httpx's own pool tops out
far below Twilio's ceiling of ~100 requests in flight per account (docs/reference/http-client.md,
encode/httpx#3215). The transport is injectable, so unit tests pass ``httpx.MockTransport``.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Mapping
from urllib.parse import urlencode

import httpx

from smsdispatch.adapters.sms import ProviderWire
from smsdispatch.contract.settings import DEFAULT_TWILIO_BASE_URL

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)
_HEADERS = {"User-Agent": "smsdispatch/0.1 (+httpx)", "Accept": "application/json"}


class TwilioHttp(ProviderWire):
    """One HTTP wire per process, shared by every :class:`TwilioProvider`.

    ``base_url`` is Twilio's own unless given (the worker passes ``SMSDISPATCH_TWILIO_BASE_URL``).
    ``max_connections`` is the concurrency cap: the transport never opens more sockets than that, so requests
    beyond it wait for a free connection (at most ``timeout.pool`` + ``timeout.connect`` seconds, after which
    nothing was sent and the call may be retried).

    Requests are httpx ``Request`` objects handed straight to the transport. ``httpx.AsyncClient`` is not in
    the path: its auth flow, redirect loop, cookie jar and URL merging do nothing for a client that follows no
    redirects, keeps no cookies and sends one precomputed Authorization header, and cost more than the whole
    provider does without them (benchmarks/provider_throughput.py: a bare create through ``AsyncClient`` on the
    same transport 518 to 636 µs of CPU, ``TwilioProvider.send`` 341 to 427 µs).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_TWILIO_BASE_URL,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        check_base_url(base_url)
        super().__init__(max_connections=max_connections, timeout=timeout, transport=transport)
        self._base_url = httpx.URL(base_url)
        self._prefix = base_url.rstrip("/")
        # Absolute URLs by path, built once: paths are per account and endpoint, so there are few.
        self._urls: dict[str, httpx.URL] = {}

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    async def request(
        self,
        method: str,
        path: str,
        *,
        authorization: str,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (no retries here) and return the response with its body read.

        ``authorization`` is the whole ``Authorization`` header value (see :func:`basic_authorization`);
        ``data`` is sent form-encoded, ``params`` as the query string.
        """
        url = self._url(path)
        if params:
            url = url.copy_merge_params(params)
        headers = {"Authorization": authorization, **_HEADERS}
        if data is None:
            content = b""
        else:
            content = urlencode(data).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = httpx.Request(method, url, headers=headers, content=content, extensions=self._extensions)
        return await self._send(request)

    def __repr__(self) -> str:
        return f"TwilioHttp(base_url={self.base_url!r})"

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            # Appended to the base, as httpx's client does, so a base URL with a path keeps it. A next_page_uri
            # ("/2010-04-01/…?Page=1…") brings its own query.
            url = self._urls[path] = httpx.URL(self._prefix + "/" + path.lstrip("/"))
        return url


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP Basic auth. Holds the secret: never log or repr it."""
    return "Basic " + b64encode(f"{username}:{password}".encode()).decode("ascii")


def check_base_url(url: str) -> None:
    """Raise ValueError, in a sentence that never quotes the URL, unless ``url`` can be Twilio's base URL: http(s),
    with a host, and without a user name or password."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        # The URL itself is left out of the message: a mistyped one may carry user:password@.
        raise ValueError("The Twilio base URL must be an http(s) URL such as https://api.twilio.com.")
    if parsed.userinfo:
        # Twilio's credentials go in the Authorization header, per tenant; a password in the URL would be
        # repeated in every transport error's message.
        raise ValueError("The Twilio base URL must not carry a user name or password.")
