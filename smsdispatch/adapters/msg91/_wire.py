"""The HTTP wire to MSG91: JSON requests through the same lean httpx transport as Twilio's (``adapters.sms``)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smsdispatch.adapters.sms import ProviderWire
from smsdispatch.contract.settings import DEFAULT_MSG91_BASE_URL

DEFAULT_BASE_URL = DEFAULT_MSG91_BASE_URL
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)
_HEADERS = {"User-Agent": "smsdispatch/0.1 (+httpx)", "Accept": "application/json", "Content-Type": "application/json"}


class Msg91Http(ProviderWire):
    """One HTTP wire per process for MSG91's API at ``base_url`` (MSG91's own unless given)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        max_connections: int = 100,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parsed = httpx.URL(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
            # The URL itself is left out of the message: a mistyped one may carry a secret.
            raise ValueError("The MSG91 base URL must be an http(s) URL with a host and no user name or password.")
        super().__init__(max_connections=max_connections, timeout=timeout, transport=transport)
        self._prefix = base_url.rstrip("/")

    async def post_json(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """POST ``body`` as JSON to ``path`` with ``headers`` (the ``authkey``); the response with its body read."""
        request = httpx.Request(
            "POST",
            httpx.URL(self._prefix + "/" + path.lstrip("/")),
            headers={**headers, **_HEADERS},
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
            extensions=self._extensions,
        )
        return await self._send(request)

    def __repr__(self) -> str:
        return f"Msg91Http(base_url={self._prefix!r})"
