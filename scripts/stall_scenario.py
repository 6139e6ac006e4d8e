"""Loop the scenario of issue 22 ("A worker that silently stops publishing outcomes while /health says ok") and
count how often one worker leaves requests without an outcome.

    .venv/bin/python scripts/stall_scenario.py --runs 50 [--wait 120] [--keep]

A diagnostic script, not a test. It runs the scenario ``--runs`` times, each run on a private Kafka broker of its
own (free ports, a throw-away data dir; it dies with the script), with its own ``SMSDISPATCH_APP_ID`` (consumer
group and internal topics), data dir, SQLite database and encryption key:

1. the Twilio simulator (``--undelivered-rate 0.3 --status-delay-ms 100``) with three live accounts;
2. three tenants registered with ``smsdispatch tenants set`` (one account each); two of them get a webhook
   (``tenants update --webhook-url``) on a local HTTP server: ``/flaky/…`` answers 500 to its first two
   deliveries and 200 after, ``/hang/…`` holds each delivery 12 s and then answers 200;
3. one worker (status polling after 2 s, webhook retries from 1 s, no ``SMSDISPATCH_PUBLIC_URL``), waited for
   on ``/ready``; right after that, 38 requests published at once, spread over the three tenants;
4. up to ``--wait`` seconds for one outcome per request on ``sms.dispatched`` / ``sms.failed``.

A run STALLED when some request had no outcome in time; it then prints the outcomes received, the worker's
``/health`` body, the ``smsdispatch_pipeline_records`` lines of its ``/metrics`` and its log path, and keeps
the run's temp dir (``--keep`` keeps every run's). The last line is ``stalls: K of N runs``. The exit code is 0
whatever the runs found; 1 only when a run could not be carried out (a child failed to start, say).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from smsdispatch.adapters.crypto import generate_key
from smsdispatch.client import SmsClient
from smsdispatch.contract import SmsDispatched, SmsRequested
from smsdispatch.contract.settings import Settings
from smsdispatch.tools.simulator import random_account_sid
from smsdispatch.tools.testing.kafka import faust_broker_url, free_ports, kafka_for_tests
from smsdispatch.tools.testing.processes import SMSDISPATCH, ManagedProcess, simulator_process, worker_process

LIVE_NUMBER = "+14155550100"
RECIPIENT = "+14155552671"
REQUESTS = 38
PARTITIONS = 8
HANG_SECONDS = 12.0
FLAKY_FAILURES = 2


# --- the tenants' webhook endpoints --------------------------------------------------------------------------


class WebhookEndpoints:
    """A local HTTP server: ``/flaky/<run>`` answers 500 to its first two POSTs then 200, ``/hang/<run>`` holds
    each POST ``HANG_SECONDS`` and then answers 200. Counts the POSTs per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoints._lock:
                    endpoints.hits[self.path] += 1
                    attempt = endpoints.hits[self.path]
                kind = self.path.strip("/").split("/", 1)[0]
                if kind == "flaky":
                    status = 500 if attempt <= FLAKY_FAILURES else 200
                elif kind == "hang":
                    time.sleep(HANG_SECONDS)
                    status = 200
                else:
                    status = 404
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the worker gave up waiting (its webhook timeout is 10 s) and closed the connection

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # hanging answers do not hold up the end of the script
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhooks", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- one run -------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    number: int
    base: Path
    received: int = 0
    last_outcome_s: float | None = None
    seconds: float = 0.0
    stalled: bool = False
    kinds: str = ""
    error: str | None = None
    details: list[str] = field(default_factory=list)


def smsdispatch_cli(env: dict[str, str], *args: str) -> None:
    """``smsdispatch ARGS…`` as a child process with ``env``; raises with its stderr when it fails."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [*SMSDISPATCH, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"smsdispatch {' '.join(args[:3])} exited with {done.returncode}: {done.stderr.strip()}")


def http_get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL we built
            body: bytes = response.read()
    except urllib.error.HTTPError as refused:  # /ready and /health may answer 503 with a body
        body = refused.read()
    except OSError as exc:
        return f"(no answer: {exc!r})"
    return body.decode(errors="replace")


async def publish_and_collect(
    broker_url: str, worker: ManagedProcess, requests: list[SmsRequested], wait: float
) -> tuple[dict[str, float], Counter[str]]:
    """Start ``worker``, publish ``requests`` at once as soon as it is ready, and collect their outcomes for up
    to ``wait`` seconds: {request_id: seconds from publishing to its outcome}, and the outcomes by kind."""
    wanted = {request.request_id: request.tenant_id for request in requests}
    arrived: dict[str, float] = {}
    kinds: Counter[str] = Counter()
    async with SmsClient(broker_url, partitions=PARTITIONS) as client:
        # The client (producer, topics) is ready before the worker, so the requests follow /ready at once. The
        # worker's start blocks this loop while it waits for /ready; nothing else runs on it meanwhile.
        worker.start(timeout=120)
        start_ms = int(time.time() * 1000) - 5_000
        began = time.monotonic()
        await client.publish_many(requests, window=len(requests))

        async def collect() -> None:
            stop = asyncio.Event()
            outcomes = client.outcomes(start_ms=start_ms, stop=stop)
            async with aclosing(outcomes):  # type: ignore[type-var]  # an async generator has aclose()
                async for outcome in outcomes:
                    rid = outcome.request_id
                    if rid is not None and wanted.get(rid) == outcome.tenant_id and rid not in arrived:
                        arrived[rid] = time.monotonic() - began
                        kinds[_kind(outcome)] += 1
                        if len(arrived) == len(wanted):
                            return

        with suppress(TimeoutError):
            await asyncio.wait_for(collect(), wait)
    return arrived, kinds


def _kind(outcome: object) -> str:
    if isinstance(outcome, SmsDispatched):
        return "dispatched"
    error = getattr(outcome, "error", None)
    code = getattr(error, "code", "?")
    return f"failed/{getattr(code, 'value', code)}"


def run_once(number: int, broker_url: str, hooks: WebhookEndpoints, wait: float) -> RunResult:
    base = Path(tempfile.mkdtemp(prefix=f"stall-run{number:03d}-"))
    result = RunResult(number=number, base=base)
    began = time.monotonic()
    suffix = uuid.uuid4().hex[:8]
    app_id = f"stall-{suffix}"
    accounts = [(random_account_sid(), f"livetoken{uuid.uuid4().hex}") for _ in range(3)]
    sim_port, web_port = free_ports(2)
    simulator = simulator_process(
        port=sim_port,
        args=[
            *(arg for sid, token in accounts for arg in ("--account", f"{sid}:{token}:{LIVE_NUMBER}")),
            *("--undelivered-rate", "0.3", "--status-delay-ms", "100"),
        ],
        log_path=base / "simulator.log",
    )
    env = {
        "SMSDISPATCH_BROKER": broker_url,
        "SMSDISPATCH_PARTITIONS": str(PARTITIONS),
        "SMSDISPATCH_ENCRYPTION_KEYS": generate_key(),
        "SMSDISPATCH_TWILIO_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SMSDISPATCH_DATABASE_URL": f"sqlite+aiosqlite:///{base / 'dispatch.db'}",
        "SMSDISPATCH_STATUS_POLL_SECONDS": "2",
        "SMSDISPATCH_WEBHOOK_RETRY_BASE_SECONDS": "1",
        "SMSDISPATCH_APP_ID": app_id,
    }
    worker = worker_process(env=env, web_port=web_port, data_dir=base / "worker", log_path=base / "worker.log")
    tenants = [f"plain-{suffix}", f"flaky-{suffix}", f"hang-{suffix}"]
    webhooks = {tenants[1]: hooks.url(f"/flaky/{app_id}"), tenants[2]: hooks.url(f"/hang/{app_id}")}
    try:
        simulator.start()
        for tenant, (sid, token) in zip(tenants, accounts, strict=True):
            smsdispatch_cli(env, "tenants", "set", tenant, "--account-sid", sid, "--auth-token", token,
                            "--from", LIVE_NUMBER)  # fmt: skip
        for tenant, url in webhooks.items():
            smsdispatch_cli(env, "tenants", "update", tenant, "--webhook-url", url)
        requests = [
            SmsRequested(
                request_id=f"{app_id}-{n:02d}-{uuid.uuid4().hex[:8]}",
                tenant_id=tenants[n % len(tenants)],
                to=RECIPIENT,
                body=f"stall scenario run {number} message {n}",
            )
            for n in range(REQUESTS)
        ]
        arrived, kinds = asyncio.run(publish_and_collect(broker_url, worker, requests, wait))
        result.received = len(arrived)
        result.kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        result.last_outcome_s = max(arrived.values(), default=None)
        result.stalled = len(arrived) < len(requests)
        if result.stalled:
            missing = Counter(r.tenant_id for r in requests if r.request_id not in arrived)
            health = http_get(f"{worker.base_url}/health")
            with suppress(ValueError):
                health = json.dumps(json.loads(health))
            metrics = http_get(f"{worker.base_url}/metrics").splitlines()
            result.details = [
                f"outcomes received: {len(arrived)} of {len(requests)} ({result.kinds or 'none'})",
                f"missing by tenant: {dict(missing)}",
                f"worker running: {worker.running()}, pid {worker.pid}",
                f"/health: {health}",
                *[line for line in metrics if line.startswith("smsdispatch_pipeline_records")],
                f"webhook POSTs: flaky {hooks.hits[f'/flaky/{app_id}']}, hang {hooks.hits[f'/hang/{app_id}']}",
                f"worker log: {worker.log_path}",
                f"simulator log: {simulator.log_path}",
            ]
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.details = traceback.format_exc().splitlines()[-12:]
    finally:
        worker.stop(timeout=45)  # the worker bounds its own stop at SMSDISPATCH_STOP_SECONDS (30 s)
        simulator.stop()
        result.seconds = time.monotonic() - began
    return result


# --- the loop ------------------------------------------------------------------------------------------------


def clean_environment() -> None:
    """Drop inherited settings the scenario does not choose (SMSDISPATCH_PUBLIC_URL above all): the children get
    this process's environment under the run's own."""
    for name in Settings.model_fields:
        os.environ.pop(f"SMSDISPATCH_{name.upper()}", None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="how many times to run the scenario (default 50)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for all outcomes (default 120)")
    parser.add_argument("--keep", action="store_true", help="keep every run's temp dir, not only stalled ones")
    args = parser.parse_args(argv)
    clean_environment()
    stalls = errors = 0
    hooks = WebhookEndpoints()
    print(f"{args.runs} runs, each on a fresh broker, waiting up to {args.wait:g} s for {REQUESTS} outcomes each")
    try:
        for number in range(1, args.runs + 1):
            # A private local broker for each run, whatever SMSDISPATCH_TEST_BROKER or Docker say: fresh, as in the
            # issue (a run on a broker holding earlier runs' requests re-reads them all in its new group).
            with kafka_for_tests({"SMSDISPATCH_TEST_CONTAINERS": "0"}) as bootstrap:
                result = run_once(number, faust_broker_url(bootstrap), hooks, args.wait)
            last = f"{result.last_outcome_s:6.1f} s" if result.last_outcome_s is not None else "     - "
            verdict = "ERROR" if result.error else "STALLED" if result.stalled else "OK"
            print(
                f"run {number:3d}: last outcome after {last}, {result.received:2d}/{REQUESTS} outcomes "
                f"[{result.kinds or 'none'}], run took {result.seconds:5.1f} s  {verdict}",
                flush=True,
            )
            if result.error:
                print(f"    {result.error}")
            for line in result.details:
                print(f"    {line}")
            stalls += result.stalled
            errors += result.error is not None
            if result.stalled or result.error or args.keep:
                print(f"    kept {result.base}", flush=True)
            else:
                shutil.rmtree(result.base, ignore_errors=True)
    finally:
        hooks.close()
    print(f"stalls: {stalls} of {args.runs} runs" + (f" ({errors} runs could not be carried out)" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
