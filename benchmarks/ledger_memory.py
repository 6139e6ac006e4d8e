"""The ledger's memory, restart time and lookup cost, on RocksDB (the default) and in memory, in one run.

Drives N ledger entries (default 1,000,000) through the worker's own state (:class:`WorkerState`: the ledger's
changelog table, its writes acknowledged by a real Kafka broker: SMSDISPATCH_BROKER, or a private local broker
started for the run), checkpointing every 5,000 writes as the worker does every second:

    .venv/bin/python benchmarks/ledger_memory.py [--entries 1000000] [--stores rocksdb,memory]

Prints, per store: the process's RSS at 10k, 100k and N entries; the lookup cost per request on the hot path
(``Ledger.get`` of an existing key); the time a restarted worker takes to restore its 8 partitions with its data
dir kept (warm) and with an empty one (the whole changelog); and the disk the data dir takes. Each measurement runs
in a child process of its own, so RSS is that of one worker holding the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from smsdispatch.adapters.kafka import TopicTrackingProducer
from smsdispatch.contract.settings import Settings, bootstrap_servers
from smsdispatch.contract.topics import CONTRACT_TOPICS
from smsdispatch.core.changelog_table import ChangelogWriter
from smsdispatch.core.ledger import Ledger, LedgerEntry, ledger_key
from smsdispatch.runtime.app import changelog_specs
from smsdispatch.runtime.assembly import home_partition
from smsdispatch.runtime.state import WorkerState
from smsdispatch.runtime.topics import check_partitions, groupless_consumer
from smsdispatch.tools.localkafka import LocalKafka
from smsdispatch.tools.testing.kafka import free_ports

PARTITIONS = 8
TENANTS = 20
CHECKPOINTS = (10_000, 100_000)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def key_of(n: int) -> tuple[bytes, int]:
    tenant = f"tenant-{n % TENANTS}"
    return ledger_key(tenant, f"request-{n:08d}"), home_partition(tenant, PARTITIONS)


async def run_app(settings: Settings, body: Any) -> dict[str, Any]:
    """Restore the worker's state for every partition (as a worker given all of them would), then run
    ``body(ledger, restored_in)``, then close it."""
    producer = TopicTrackingProducer(
        bootstrap_servers=bootstrap_servers(settings.broker), acks="all", enable_idempotence=True, linger_ms=10
    )
    await producer.start()

    def writer(topic: str) -> ChangelogWriter:
        async def write(key: bytes, value: bytes | None, partition: int) -> Any:
            return await (await producer.send(topic, value, key=key, partition=partition))

        return write

    data_dir = Path(settings.data_dir) if settings.ledger_store == "rocksdb" and settings.data_dir else None
    state = WorkerState(settings.app_id, writer, lambda: groupless_consumer(settings.broker), data_dir=data_dir)
    started = time.perf_counter()
    state.assigned(range(PARTITIONS))
    await asyncio.gather(*(state.ready(partition) for partition in range(PARTITIONS)))
    restored_in = time.perf_counter() - started
    try:
        return dict(await body(Ledger(state.table("ledger")), restored_in))
    finally:
        await state.close()
        await producer.stop()


async def fill(ledger: Ledger, restored_in: float, entries: int) -> dict[str, Any]:
    gc.collect()
    figures: dict[str, Any] = {"rss_mb_empty": round(rss_mb(), 1)}
    now = LedgerEntry(state="done", partition=0, at=time.time(), outcome_topic="sms.dispatched",
                      outcome='{"request_id":"x","status":"queued"}', emitted_through=1)  # fmt: skip
    pending: list[Any] = []
    started = time.perf_counter()
    for n in range(entries):
        key, partition = key_of(n)
        pending.append(ledger.mark(key, now.model_copy(update={"partition": partition})))
        if len(pending) >= 5_000:
            await asyncio.gather(*pending)
            pending.clear()
            ledger.checkpoint()
        if n + 1 in CHECKPOINTS:
            await asyncio.gather(*pending)
            pending.clear()
            ledger.checkpoint()
            gc.collect()
            figures[f"rss_mb_at_{n + 1}"] = round(rss_mb(), 1)
    await asyncio.gather(*pending)
    ledger.checkpoint()
    figures["writes_per_s"] = round(entries / (time.perf_counter() - started))
    gc.collect()
    figures[f"rss_mb_at_{entries}"] = round(rss_mb(), 1)
    figures["lookup_us"] = lookup_cost(ledger, entries)
    return figures


def lookup_cost(ledger: Ledger, entries: int, samples: int = 100_000) -> float:
    keys = [key_of(random.randrange(entries))[0] for _ in range(samples)]
    started = time.perf_counter()
    found = sum(1 for key in keys if ledger.get(key) is not None)
    took = time.perf_counter() - started
    assert found == samples, f"only {found} of {samples} entries found"
    return round(took / samples * 1e6, 2)


async def restart(ledger: Ledger, restored_in: float, entries: int) -> dict[str, Any]:
    return {"restore_s": round(restored_in, 1), "lookup_us": lookup_cost(ledger, entries, 20_000)}


def child(args: argparse.Namespace) -> None:
    settings = Settings(
        broker=args.broker, app_id=args.app_id, data_dir=args.data_dir, ledger_store=args.store,
        partitions=PARTITIONS, web_port=free_ports(1)[0],
    )  # fmt: skip
    body = fill if args.child == "fill" else restart
    figures = asyncio.run(run_app(settings, lambda ledger, took: body(ledger, took, args.entries)))
    print(json.dumps(figures), flush=True)


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, env={**os.environ}
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"child {args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def disk_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024 / 1024, 1)


def measure(broker: str, store: str, entries: int, work: Path) -> None:
    app_id = f"ledgerbench-{store}-{uuid.uuid4().hex[:6]}"
    specs = (*CONTRACT_TOPICS, *changelog_specs(Settings(app_id=app_id)))
    asyncio.run(check_partitions(broker, PARTITIONS, specs))
    warm, empty = work / f"{store}-warm", work / f"{store}-empty"
    common = ["--broker", broker, "--app-id", app_id, "--store", store, "--entries", str(entries)]
    filled = run_child("--child", "fill", "--data-dir", str(warm), *common)
    print(f"\n{store}: {entries:,} entries written at {filled['writes_per_s']:,}/s")
    print(f"  RSS: empty {filled['rss_mb_empty']} MB, " + ", ".join(
        f"{n:,}: {filled[f'rss_mb_at_{n}']} MB" for n in (*CHECKPOINTS, entries) if f"rss_mb_at_{n}" in filled
    ))  # fmt: skip
    print(f"  lookup of an existing entry: {filled['lookup_us']} µs")
    if store == "rocksdb":
        print(f"  data dir on disk: {disk_mb(warm)} MB")
    again = run_child("--child", "restart", "--data-dir", str(warm), *common)
    label = "restart with its data dir" if store == "rocksdb" else "restart (memory: always the whole changelog)"
    print(f"  {label}: restored in {again['restore_s']} s; lookup then {again['lookup_us']} µs")
    if store == "rocksdb":
        fresh = run_child("--child", "restart", "--data-dir", str(empty), *common)
        print(f"  restart with an empty data dir (whole changelog): restored in {fresh['restore_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--stores", default="rocksdb,memory")
    parser.add_argument("--child", choices=["fill", "restart"])
    parser.add_argument("--broker")
    parser.add_argument("--app-id")
    parser.add_argument("--data-dir")
    parser.add_argument("--store")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="ledgerbench-"))
    broker_url = os.environ.get("SMSDISPATCH_BROKER")
    local = None
    try:
        if broker_url is None:
            port, controller = free_ports(2)
            local = LocalKafka(port, work / "kafka", controller_port=controller, die_with_parent=True)
            local.start()
            broker_url = local.broker_url
        for store in args.stores.split(","):
            measure(broker_url, store, args.entries, work)
    finally:
        if local is not None:
            local.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
