"""How many message creates per second the Twilio simulator sustains, so it is never the bottleneck.

Starts ``python -m smsdispatch simulator`` as a subprocess with one live account (once per latency), then
POSTs creates with aiohttp, ``--in-flight`` at a time, and prints:

- creates/s achieved end to end (on a 2-core machine the aiohttp *client* shares the CPUs, so this is a floor);
- the simulator's own CPU time per create (from /proc), and the creates/s one core of simulator would give;
- with latency, the ceiling ``in-flight / latency`` that no server could beat.

    .venv/bin/python benchmarks/simulator_throughput.py [--requests 5000] [--in-flight 100] [--latency-ms 0 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from yarl import URL

ACCOUNT_SID = "AC" + "b" * 32
SENDER = "+14155550100"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Run:
    elapsed_s: float
    latencies_s: list[float]
    statuses: Counter[int]
    server_cpu_s: float | None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (Linux /proc), or None where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_simulator(port: int, token: str, latency_ms: float) -> subprocess.Popen[str]:
    command = [
        *(sys.executable, "-m", "smsdispatch", "simulator", "--port", str(port)),
        *("--account", f"{ACCOUNT_SID}:{token}:{SENDER}", "--latency-ms", str(latency_ms), "--seed", "1"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening" not in line:
        process.kill()
        _, errors = process.communicate()
        raise SystemExit(f"the simulator did not start: {line.strip() or errors.strip()}")
    return process


async def _drive(
    base_url: str, token: str, requests: int, in_flight: int, server_cpu: Callable[[], float | None]
) -> Run:
    url = URL(f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    headers = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, token), **FORM}
    # Bodies are encoded before the clock starts: the client's own work is not what is measured.
    bodies = [
        urlencode({"To": f"+1415555{n % 10_000:04d}", "From": SENDER, "Body": f"benchmark {n}"}).encode()
        for n in range(requests)
    ]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    remaining = iter(bodies)

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=in_flight), headers=headers, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:

        async def warm_up() -> None:  # open every connection before the clock starts
            async with session.get(f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}.json") as response:
                await response.read()

        async def worker() -> None:
            for body in remaining:
                started = time.perf_counter()
                async with session.post(url, data=body) as response:
                    await response.read()
                    statuses[response.status] += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(warm_up() for _ in range(in_flight)))
        cpu_before = server_cpu()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - began
        cpu_after = server_cpu()
    used = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Run(elapsed, latencies, statuses, used)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the Twilio simulator's creates per second.")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    args = parser.parse_args()
    token = secrets.token_hex(16)  # lives only as long as this run's simulator
    print(f"simulator throughput: {args.requests} creates, {args.in_flight} in flight, {os.cpu_count()} CPUs")
    for latency_ms in args.latency_ms:
        port = _free_port()
        process = _start_simulator(port, token, latency_ms)
        try:
            run = asyncio.run(
                _drive(
                    f"http://127.0.0.1:{port}",
                    token,
                    args.requests,
                    args.in_flight,
                    lambda pid=process.pid: _cpu_seconds(pid),  # type: ignore[misc]
                )
            )
        finally:
            process.terminate()
            process.wait(timeout=10)
        line = (
            f"  latency {latency_ms:>4.0f} ms: {args.requests / run.elapsed_s:7.0f} creates/s end to end "
            f"(p50 {statistics.median(run.latencies_s) * 1000:.1f} ms, "
            f"p99 {_percentile(run.latencies_s, 0.99) * 1000:.1f} ms, statuses {dict(run.statuses)})"
        )
        if latency_ms:
            line += f"; ceiling at this latency {args.in_flight / (latency_ms / 1000):.0f}/s"
        if run.server_cpu_s:
            per_create_us = run.server_cpu_s / args.requests * 1e6
            line += f"; simulator CPU {per_create_us:.0f} us/create = {1e6 / per_create_us:.0f} creates/s per core"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
