#!/usr/bin/env python3
"""Sends per second TwilioProvider (and Msg91Provider) sustains against the simulator, with N creates in flight.

    .venv/bin/python benchmarks/provider_throughput.py [--requests 3000] [--inflight 100]
        [--latency-ms 0 50] [--transport aiohttp asyncclient httpcore msg91]

For each latency, starts ``python -m smsdispatch simulator`` in a child process (one live account, no
concurrency limit), then sends through TwilioProvider.send() with the given transport: the production
transport (aiohttp underneath), and for comparison the bare create through ``httpx.AsyncClient`` on that same
transport ("asyncclient", no provider logic: the client layers TwilioHttp leaves out) and httpx's own (httpcore)
pool. Prints one line per run: sends/s, and the client's CPU time per send (its own cost, which the machine's
load does not inflate the way it does wall-clock rates). At 50 ms the ceiling is inflight / 0.05 s = 2,000
sends/s; at 0 ms the simulator's speed is part of the figure, and on a 2-core machine the simulator and the
client share the CPUs. "msg91" is the platform default's adapter on the production transport, against the
simulator's MSG91 Flow API (its reports are not posted: no report URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import SecretStr

from smsdispatch.adapters.msg91 import Msg91Account, Msg91Http, Msg91Provider
from smsdispatch.adapters.twilio import AiohttpTransport, OutgoingSms, RetryPolicy, TwilioHttp, TwilioProvider
from smsdispatch.contract import TenantConfig

ACCOUNT_SID = "AC" + "0b" * 16
AUTH_TOKEN = secrets.token_hex(16)  # a fresh one per run: nothing to leak
FROM_NUMBER = "+14155550100"
TO_NUMBER = "+14155552671"
MSG91_TEMPLATE = "bench_template"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def simulator(latency_ms: float) -> Iterator[str]:
    """A simulator child process on a free port; yields its base URL once it accepts connections."""
    port = free_port()
    command = [
        sys.executable, "-m", "smsdispatch", "simulator", "--port", str(port),
        "--account", f"{ACCOUNT_SID}:{AUTH_TOKEN}:{FROM_NUMBER}", "--latency-ms", str(latency_ms),
        "--msg91", f"{AUTH_TOKEN}:{MSG91_TEMPLATE}",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 20
        while True:
            if child.poll() is not None:
                raise SystemExit(f"simulator exited: {child.stderr.read().decode() if child.stderr else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise SystemExit("simulator did not start within 20 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@dataclass(frozen=True)
class Figures:
    sends_per_second: float
    client_cpu_us_per_send: float  # this process's CPU per send: the client's own cost, whatever the load
    retried: int


async def measure(base_url: str, transport_name: str, requests: int, inflight: int) -> Figures:
    """Sends per second over ``requests`` sends, the client CPU each cost, and how many were retried."""
    if transport_name == "asyncclient":
        return await measure_async_client(base_url, requests, inflight)
    if transport_name == "msg91":
        return await measure_msg91(base_url, requests, inflight)
    transport: httpx.AsyncBaseTransport | None = None
    if transport_name == "httpcore":
        limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
        transport = httpx.AsyncHTTPTransport(limits=limits)
    config = TenantConfig(account_sid=ACCOUNT_SID, auth_token=SecretStr(AUTH_TOKEN), from_number=FROM_NUMBER)
    gate = asyncio.Semaphore(inflight)
    async with TwilioHttp(base_url, max_connections=inflight, transport=transport) as http:
        provider = TwilioProvider(config, http, RetryPolicy())

        async def one(number: int) -> int:
            async with gate:
                result = await provider.send(OutgoingSms(to=TO_NUMBER, body=f"Benchmark message {number}"))
                return result.attempts

        attempts, figures = await timed(one, requests, inflight)
    return Figures(figures.sends_per_second, figures.client_cpu_us_per_send, sum(1 for a in attempts if a > 1))


async def timed(one: Callable[[int], Awaitable[T]], requests: int, inflight: int) -> tuple[list[T], Figures]:
    """``requests`` calls of ``one`` after a first round that opens the connections; their results, and the
    rate and this process's CPU per call (``retried`` left 0 for the caller)."""
    await asyncio.gather(*(one(n) for n in range(min(inflight, requests))))
    started, cpu_started = time.perf_counter(), time.process_time()
    results = await asyncio.gather(*(one(n) for n in range(requests)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return results, Figures(requests / elapsed, cpu / requests * 1e6, 0)


async def measure_msg91(base_url: str, requests: int, inflight: int) -> Figures:
    """The same sends through Msg91Provider (the platform default) against the simulator's Flow API."""
    account = Msg91Account(authkey=SecretStr(AUTH_TOKEN), template_id=MSG91_TEMPLATE)
    gate = asyncio.Semaphore(inflight)
    async with Msg91Http(base_url, max_connections=inflight) as http:
        provider = Msg91Provider(account, http, RetryPolicy())

        async def one(number: int) -> int:
            async with gate:
                message = OutgoingSms(to=TO_NUMBER, body=f"Benchmark message {number}", reference=f"04benc{number}")
                return (await provider.send(message)).attempts

        attempts, figures = await timed(one, requests, inflight)
    return Figures(figures.sends_per_second, figures.client_cpu_us_per_send, sum(1 for a in attempts if a > 1))


async def measure_async_client(base_url: str, requests: int, inflight: int) -> Figures:
    """The same creates through ``httpx.AsyncClient`` over the production transport, no provider logic: what
    the client's layers (auth flow, redirects, cookies, URL merging) cost, which TwilioHttp leaves out."""
    gate = asyncio.Semaphore(inflight)
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    transport = AiohttpTransport(max_connections=inflight)
    async with httpx.AsyncClient(base_url=base_url, transport=transport, auth=(ACCOUNT_SID, AUTH_TOKEN)) as client:

        async def one(number: int) -> None:
            async with gate:
                form = {"To": TO_NUMBER, "From": FROM_NUMBER, "Body": f"Benchmark message {number}"}
                response = await client.post(path, data=form)
                assert response.status_code == 201, response.status_code

        _, figures = await timed(one, requests, inflight)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    parser.add_argument(
        "--transport",
        nargs="+",
        choices=["aiohttp", "asyncclient", "httpcore", "msg91"],
        default=["aiohttp", "asyncclient", "httpcore", "msg91"],
    )
    args = parser.parse_args()
    what = "TwilioProvider.send() / Msg91Provider.send() against the simulator"
    print(f"{what}: {args.requests} sends, {args.inflight} in flight")
    for latency in args.latency_ms:
        with simulator(latency) as base_url:
            for transport in args.transport:
                figures = asyncio.run(measure(base_url, transport, args.requests, args.inflight))
                ceiling = f" (ceiling {args.inflight / (latency / 1000):,.0f})" if latency else ""
                print(
                    f"  latency {latency:>4.0f} ms  transport {transport:<8}  "
                    f"{figures.sends_per_second:7,.0f} sends/s{ceiling:<16}  "
                    f"client CPU {figures.client_cpu_us_per_send:5,.0f} us/send  retried {figures.retried}"
                )


if __name__ == "__main__":
    main()
