"""Every per-core figure of the dispatch pipeline side by side, in one run.

5,000 requests over 10 tenants (defaults), Twilio simulated at 50 ms latency in its own process, one worker
process, a real Kafka broker (SMSDISPATCH_BROKER, or a private local broker started for the run):

    .venv/bin/python benchmarks/dispatch_throughput.py [--requests 5000] [--tenants 10] [--latency-ms 50]
        [--workers 1,2] [--half-load-rate R] [--profile PREFIX]

Prints:
  (a) the raw aiohttp ceiling against the simulator (creates/s, this process driving it with the worker's
      concurrency) and its client CPU per create;
  (b) the naive design's rate: the official twilio SDK, synchronous, one message at a time;
  (c) for each worker count, the pipeline's outcomes/s from the first request published to the last outcome
      read, and how many requests each worker took;
  (d) the worker's CPU per request, read from /proc for the worker process itself: until the last outcome, and
      in all (once the log sink and the tracking that follow have caught up);
  (e) the ratios (c)/(a), (c)/(b) and (d)/(a's CPU per create);
  (f) request-to-outcome p50 and p99 latency with requests published at about half of (c) (or at
      --half-load-rate), on a worker that has caught up, and the worker's CPU per request at that load;
  (g) the worker's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from smsdispatch.adapters.crypto import generate_key
from smsdispatch.cli import main as cli
from smsdispatch.client import SmsClient
from smsdispatch.contract import SmsDispatched, SmsRequested
from smsdispatch.tools.localkafka import LocalKafka
from smsdispatch.tools.simulator import random_account_sid
from smsdispatch.tools.testing.kafka import faust_broker_url, free_ports
from smsdispatch.tools.testing.processes import simulator_process, worker_metric, worker_process


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


def naive_sdk_rate(base_url: str, account: str, token: str, sender: str, seconds: float = 8.0) -> float:
    """Messages/s of the seed's design: the official SDK, synchronous, one message after the other."""
    from twilio.rest import Client  # a dev dependency, only for this comparison

    client = Client(account, token)
    client.api.base_url = base_url
    sent, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.messages.create(to="+14155552671", from_=sender, body=f"naive {sent}")
        sent += 1
    return sent / (time.perf_counter() - started)


def start_profiler(prefix: str, pid: int, workers: int, phase: str) -> subprocess.Popen[bytes]:
    """py-spy (in the dev extras) sampling the first worker; collapsed stacks go to PREFIX-N-PHASE.txt."""
    out = f"{prefix}-{workers}-{phase}.txt"
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, whether or not the venv is on PATH
    command = [
        str(beside) if beside.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--output",
        out,
        "--rate",
        "200",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_until_idle(pids: list[int], busy_below: float = 0.05, longest: float = 180.0) -> float:
    """Wait until the workers use less than ``busy_below`` of a core (the log sink and the tracking that follow the
    outcomes have caught up); returns how long that took."""
    started = time.perf_counter()
    quiet = 0
    before = sum(proc_cpu_seconds(pid) for pid in pids)
    while time.perf_counter() - started < longest and quiet < 2:
        time.sleep(0.5)
        now = sum(proc_cpu_seconds(pid) for pid in pids)
        quiet = quiet + 1 if (now - before) / 0.5 < busy_below else 0
        before = now
    return time.perf_counter() - started


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def latencies(broker: str, tenants: list[str], rate: float, seconds: float) -> tuple[float, float]:
    """p50 and p99 (seconds) from publish to outcome, publishing at ``rate`` requests/s for ``seconds``."""
    total = max(1, int(rate * seconds))
    requests = [
        SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenants[n % len(tenants)], to="+14155552671", body=f"l{n}")
        for n in range(total)
    ]
    start_ms = int(time.time() * 1000) - 1000
    published: dict[str, float] = {}
    async with SmsClient(broker) as client:
        # Every 10 ms, the requests due by then, in one pipelined publish: one acknowledged round trip per request
        # would cost this process more CPU than the worker spends, on the same two cores.
        started = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            batch = requests[sent:due]
            moment = time.time()
            published.update((request.request_id, moment) for request in batch)
            await client.publish_many(batch)
            sent = due
            await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter(), 0.01))
        outcomes = await client.wait_for(list(published), timeout=600, since_ms=start_ms)
    took = sorted(
        (outcome.dispatched_at.timestamp() if isinstance(outcome, SmsDispatched) else time.time())
        - published[request_id]
        for request_id, outcome in outcomes.items()
    )
    return took[len(took) // 2], took[min(len(took) - 1, int(len(took) * 0.99))]


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
    parser.add_argument(
        "--half-load-rate",
        type=float,
        help="publish (f) at this rate, not at half of (c): two versions compared at the same load, where the CPU "
        "per request is steadier than in the burst (a burst's batching depends on how fast the machine is that minute)",
    )
    parser.add_argument(
        "--profile",
        help="sample the first worker with py-spy: the burst of (c) into PROFILE-<workers>-burst.txt, the steady "
        "load of (f) into PROFILE-<workers>-steady.txt",
    )
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="smsdispatch-bench-"))
    broker_url = os.environ.get("SMSDISPATCH_BROKER")
    local = None
    if broker_url is None:
        port, controller_port = free_ports(2)
        # die_with_parent: a run killed by a signal that skips the finally below (SIGTERM from a timeout, SIGKILL)
        # still leaves no broker behind; Ctrl-C reaches the finally and stops it there.
        local = LocalKafka(port=port, controller_port=controller_port, data_dir=work / "kafka", die_with_parent=True)
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
    finished = False
    try:
        for tenant, sender in zip(tenants, senders, strict=True):
            assert cli(["tenants", "set", tenant, "--account-sid", sid, "--auth-token", token, "--from", sender]) == 0
        in_flight = 100 * min(args.tenants, 10)
        sim_url = f"http://127.0.0.1:{sim_port}"
        cpu_before = time.process_time()
        ceiling = asyncio.run(simulator_ceiling(sim_url, sid, token, senders[0], args.requests, in_flight))
        raw_cpu_us = (time.process_time() - cpu_before) / args.requests * 1e6
        print(f"(a) raw aiohttp ceiling at {args.latency_ms} ms, {in_flight} in flight: {ceiling:,.0f} creates/s, "
              f"client CPU {raw_cpu_us:,.0f} µs per create")  # fmt: skip
        naive = naive_sdk_rate(sim_url, sid, token, senders[0])
        print(f"(b) naive design (twilio SDK, synchronous, one at a time): {naive:,.1f} messages/s")
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
                pids = [pid for worker in workers if (pid := worker.pid) is not None]
                cpu_before = sum(proc_cpu_seconds(pid) for pid in pids)
                profiler = start_profiler(args.profile, pids[0], count, "burst") if args.profile else None
                rate, dispatched = asyncio.run(pipeline(broker_url, tenants, args.requests))
                stop_profiler(profiler)
                worker_cpu_us = (sum(proc_cpu_seconds(pid) for pid in pids) - cpu_before) / args.requests * 1e6
                # The log sink and the tracker (pending polls) follow the outcomes: their work counts too, and the
                # latency figure is taken on a worker that has caught up, not one still busy with the burst.
                settled_after = wait_until_idle(pids)
                total_cpu_us = (sum(proc_cpu_seconds(pid) for pid in pids) - cpu_before) / args.requests * 1e6
                split = [int(worker_metric(worker.base_url, "smsdispatch_requests_total")) for worker in workers]
                steady_rate = args.half_load_rate or rate / 2
                profiler = start_profiler(args.profile, pids[0], count, "steady") if args.profile else None
                cpu_before = sum(proc_cpu_seconds(pid) for pid in pids)
                p50, p99 = asyncio.run(latencies(broker_url, tenants, steady_rate, seconds=10))
                stop_profiler(profiler)
                wait_until_idle(pids)
                steady_requests = max(1, int(steady_rate * 10))
                steady_cpu_us = (sum(proc_cpu_seconds(pid) for pid in pids) - cpu_before) / steady_requests * 1e6
                peak = max(peak_rss_mb(pid) for pid in pids)
            finally:
                for worker in workers:
                    worker.stop()
            print(
                f"(c) {count} worker(s): {args.requests} requests over {args.tenants} tenants -> {rate:,.0f} "
                f"outcomes/s ({dispatched} dispatched); requests taken per worker: {split}"
            )
            print(
                f"(d) worker CPU per request: {worker_cpu_us:,.0f} µs until the last outcome; {total_cpu_us:,.0f} µs "
                f"with the log sink and tracking that follow ({settled_after:.1f}s more)"
            )
            print(
                f"(e) (c)/(a) = {rate / ceiling:.2f}   (c)/(b) = {rate / naive:,.0f}x   "
                f"(d)/(a's CPU per create) = {worker_cpu_us / raw_cpu_us:.1f}x, {total_cpu_us / raw_cpu_us:.1f}x in all"
            )
            load = "as asked" if args.half_load_rate else "half of (c)"
            print(
                f"(f) at {steady_rate:,.0f} requests/s ({load}): p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms; "
                f"worker CPU {steady_cpu_us:,.0f} µs per request at that load, everything included"
            )
            print(f"(g) worker peak RSS: {peak:,.0f} MB")  # fmt: skip
        finished = True
    finally:
        simulator.stop()
        if local is not None:
            local.stop()
        if finished:
            shutil.rmtree(work, ignore_errors=True)  # about 30 MB of broker and worker data a run
        else:
            print(f"the run did not finish; its logs (broker, simulator, workers) are kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
