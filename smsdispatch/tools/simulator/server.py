"""Serving the simulator: an async context manager for tests and benchmarks, and the CLI's blocking runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from smsdispatch.tools.simulator.app import SIMULATOR_KEY, Simulator, build_app
from smsdispatch.tools.simulator.config import SimulatorConfig
from smsdispatch.tools.simulator.faults import FaultMode, parse_fault_mode


class RunningSimulator:
    """A simulator listening on ``base_url``; use it from the event loop it runs on."""

    def __init__(self, simulator: Simulator, host: str, port: int) -> None:
        self._simulator = simulator
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config(self) -> SimulatorConfig:
        return self._simulator.config

    def accepted_messages(self) -> list[dict[str, Any]]:
        """Every accepted message, shaped like ``GET /_sim/messages``."""
        return self._simulator.accepted_messages()

    def msg91_messages(self) -> list[dict[str, Any]]:
        """Every stored MSG91 message, shaped like ``GET /_sim/msg91/messages`` (never an authkey)."""
        return self._simulator.msg91.listing()

    @property
    def pending_msg91_reports(self) -> int:
        """MSG91 delivery reports scheduled or in flight."""
        return self._simulator.msg91.reporter.pending

    def inject_faults(self, mode: FaultMode | str, count: int = 1) -> None:
        """Make the next ``count`` creates fail with ``mode`` (see ``faults.FAULT_MODES``)."""
        fault = parse_fault_mode(mode)
        if fault is None or count < 1:
            raise ValueError(f"unknown fault mode {mode!r} or count {count} below 1")
        self._simulator.faults.inject(fault, count)

    def clear_faults(self) -> None:
        self._simulator.faults.clear()

    async def reply_from_recipient(
        self, account_sid: str, recipient: str, to: str, body: str, url: str | None = None
    ) -> dict[str, Any]:
        """``recipient`` texts ``body`` to ``to`` (a sender or service of ``account_sid``), as ``POST /_sim/inbound``.

        STOP-family keywords opt the recipient out of the account's messages (creates get 400/21610), START-family
        ones opt back in; the signed incoming-message webhook goes to ``url`` when given. Returns
        ``{"delivered": bool, "status": int | None, "opted_out": bool}``; ValueError when a field is wrong.
        """
        return await self._simulator.reply_from_recipient(account_sid, recipient, to, body, url)

    def is_opted_out(self, account_sid: str, recipient: str) -> bool:
        """Whether creates from ``account_sid`` to ``recipient`` are refused with 21610."""
        return self._simulator.inbound.is_opted_out(account_sid, recipient)

    @property
    def pending_callbacks(self) -> int:
        """Status callbacks scheduled or in flight."""
        return self._simulator.lifecycle.pending

    def __repr__(self) -> str:
        return f"RunningSimulator(base_url={self.base_url!r})"


@asynccontextmanager
async def running_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve ``config`` on ``host:port`` (0 picks a free port) until the block exits."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield RunningSimulator(app[SIMULATOR_KEY], host, bound_port)
    finally:
        await runner.cleanup()


async def serve_forever(
    config: SimulatorConfig, host: str, port: int, on_ready: Callable[[RunningSimulator], None]
) -> None:
    """Serve until cancelled; ``on_ready`` is called once the socket listens."""
    async with running_simulator(config, host, port) as simulator:
        on_ready(simulator)
        await asyncio.Event().wait()
