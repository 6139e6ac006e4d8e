"""What every provider's HTTP wire shares: one transport per process, per-request timeouts, and closing it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from smsdispatch.adapters.sms._transport import AiohttpTransport


class ProviderWire:
    """The base of a provider's HTTP wire (``TwilioHttp``, ``Msg91Http``): requests go straight to the
    transport (aiohttp underneath unless one is injected, ``httpx.MockTransport`` in tests), never through
    ``httpx.AsyncClient``, with ``timeout`` on each; ``max_connections`` caps the sockets it opens."""

    def __init__(
        self, *, max_connections: int, timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._transport = transport if transport is not None else AiohttpTransport(max_connections=max_connections)
        self._extensions = {"timeout": timeout.as_dict()}

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` once; the response with its body read."""
        response = await self._transport.handle_async_request(request)
        await response.aread()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()
