"""Outcomes per second of the whole pipeline, next to the simulator's own ceiling, in one run.

5,000 requests over 10 tenants (defaults), Twilio simulated at 50 ms latency in its own process, one worker
process, a real Kafka broker (SMSDISPATCH_BROKER, or a private local broker started for the run):

    .venv/bin/python benchmarks/dispatch_throughput.py [--requests 5000] [--tenants 10] [--latency-ms 50]
        [--workers 1,2]

Prints: the simulator's ceiling (creates/s it sustains driven directly by aiohttp with the worker's
concurrency), then for each worker count the pipeline's outcomes/s from the first request published to the
last outcome read, and how many requests each worker took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from smsdispatch.cli import main as cli
from smsdispatch.client import SmsClient
from smsdispatch.crypto import generate_key
from smsdispatch.localkafka import LocalKafka
from smsdispatch.schemas import SmsDispatched, SmsRequested
from smsdispatch.simulator import random_account_sid
from smsdispatch.testing.kafka import faust_broker_url, free_ports
from smsdispatch.testing.processes import simulator_process, worker_metric, worker_process


async def simulator_ceiling(base_url: str, account: str, token: str, sender: str, total: int, in_flight: int) -> float:
    """Creates/s the simulator sustains when nothing but aiohttp drives it."""
    path = f"/2010-04-01/Accounts/{account}/Messages.json"
    limit = asyncio.Semaphore(in_flight)
    headers = {"Authorization": aiohttp.encode_basic_auth(account, token)}
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as http:

        async def one(n: int) -> None:
            async with limit, http.post(path, data={"To": "+14155552671", "From": sender, "Body": f"c{n}"}) as r:
                await r.read()
                assert r.status == 201, r.status

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(total)))
        return total / (time.perf_counter() - started)


async def pipeline(broker: str, tenants: list[str], total: int) -> tuple[float, int]:
    requests = [
        SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenants[n % len(tenants)], to="+14155552671", body=f"b{n}")
        for n in range(total)
    ]
    start_ms = int(time.time() * 1000) - 1000
    started = time.perf_counter()
    async with SmsClient(broker) as client:
        await client.publish_many(requests)
        outcomes = await client.wait_for([r.request_id for r in requests], timeout=900, since_ms=start_ms)
    elapsed = time.perf_counter() - started
    dispatched = sum(1 for o in outcomes.values() if isinstance(o, SmsDispatched))
    return total / elapsed, dispatched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", default="1", help="worker counts to measure, comma-separated (1,2)")
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="smsdispatch-bench-"))
    broker_url = os.environ.get("SMSDISPATCH_BROKER")
    local = None
    if broker_url is None:
        port, controller_port = free_ports(2)
        local = LocalKafka(port=port, controller_port=controller_port, data_dir=work / "kafka")
        local.start()
        broker_url = faust_broker_url(local.bootstrap)
    sid, token = random_account_sid(), f"tok{uuid.uuid4().hex}"
    senders = [f"+1415555{n:04d}" for n in range(args.tenants)]
    [sim_port] = free_ports(1)
    simulator = simulator_process(
        port=sim_port,
        args=["--account", f"{sid}:{token}:{','.join(senders)}", "--latency-ms", str(args.latency_ms)],
        log_path=work / "simulator.log",
    ).start()
    env = {
        "SMSDISPATCH_BROKER": broker_url,
        "SMSDISPATCH_ENCRYPTION_KEYS": generate_key(),
        "SMSDISPATCH_TWILIO_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SMSDISPATCH_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'dispatch.db'}",
    }
    os.environ.update(env)
    suffix = uuid.uuid4().hex[:6]
    tenants = [f"bench{n}-{suffix}" for n in range(args.tenants)]
    try:
        for tenant, sender in zip(tenants, senders, strict=True):
            assert cli(["tenants", "set", tenant, "--account-sid", sid, "--auth-token", token, "--from", sender]) == 0
        in_flight = 100 * min(args.tenants, 10)
        ceiling = asyncio.run(
            simulator_ceiling(f"http://127.0.0.1:{sim_port}", sid, token, senders[0], args.requests, in_flight)
        )
        print(f"simulator ceiling at {args.latency_ms} ms, {in_flight} in flight: {ceiling:,.0f} creates/s")
        for count in worker_counts:
            ports = free_ports(count)
            workers = [
                worker_process(
                    env=env, web_port=port, data_dir=work / f"w{count}-{n}", log_path=work / f"w{count}-{n}.log"
                )
                for n, port in enumerate(ports)
            ]
            try:
                for worker in workers:
                    worker.start(timeout=120)
                time.sleep(3)  # let the group settle: the first rebalances are not part of the figure
                rate, dispatched = asyncio.run(pipeline(broker_url, tenants, args.requests))
                split = [int(worker_metric(worker.base_url, "smsdispatch_requests_total")) for worker in workers]
            finally:
                for worker in workers:
                    worker.stop()
            print(f"{count} worker(s): {args.requests} requests over {args.tenants} tenants -> {rate:,.0f} outcomes/s "
                  f"({dispatched} dispatched), {rate / ceiling:.0%} of the simulator's ceiling; "
                  f"requests taken per worker: {split}")  # fmt: skip
    finally:
        simulator.stop()
        if local is not None:
            local.stop()


if __name__ == "__main__":
    main()
