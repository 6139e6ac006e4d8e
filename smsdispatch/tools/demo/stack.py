"""The processes of a demo run: a broker (unless one is given), the simulator and a worker, on free ports.

Everything started here is stopped by :meth:`DemoStack.close`, in reverse order, whatever happened before;
a broker given through SMSDISPATCH_BROKER is used and left alone. Logs stay in the run's directory.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from smsdispatch.tools.localkafka import LocalKafka, LocalKafkaError
from smsdispatch.tools.testing.kafka import free_ports
from smsdispatch.tools.testing.processes import ChildFailed, ManagedProcess, simulator_process, worker_process

# Fast receipts: queued -> sent -> delivered in a fraction of a second, so the summary shows them.
SIMULATOR_STATUS_DELAY_MS = 150
KAFKA_START_TIMEOUT = 120.0
WORKER_START_TIMEOUT = 90.0


class DemoError(Exception):
    """Something the demo needs did not work; the message is one sentence saying what, and where to look."""


class DemoStack:
    """Starts the demo's processes and stops them again; ``say`` prints one line of what is going on."""

    def __init__(self, workdir: Path, say: Callable[[str], None]) -> None:
        self.workdir = workdir
        self._say = say
        self._kafka: LocalKafka | None = None
        self._children: list[tuple[str, ManagedProcess]] = []
        # Kafka takes a client and a controller port; the simulator and the worker's web server one each.
        self._kafka_port, self._controller_port, self.simulator_port, self.web_port = free_ports(4)

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.simulator_port}"

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def log_paths(self) -> list[Path]:
        paths = [process.log_path for _, process in self._children]
        if self._kafka is not None:
            paths.append(self._kafka.log_file)
        return paths

    def pids(self) -> dict[str, int]:
        """The process id of everything this stack started and still runs (``broker``, ``simulator``, ``worker``)."""
        found = {name: process.pid for name, process in self._children if process.running()}
        if self._kafka is not None:
            found["broker"] = self._kafka.status().pid
        return {name: pid for name, pid in found.items() if pid is not None}

    def start_broker(self) -> str:
        """Start a private single-node Kafka with its data in the run's directory; return its broker URL."""
        # Ours alone: free ports and its own data directory, so a developer's broker on 9092 is never touched;
        # die_with_parent stops the JVM even if this process is killed before it can clean up.
        self._kafka = LocalKafka(
            self._kafka_port,
            self.workdir / "kafka",
            controller_port=self._controller_port,
            die_with_parent=True,
        )
        began = time.monotonic()
        try:
            self._kafka.start(timeout=KAFKA_START_TIMEOUT, progress=self._say)
        except LocalKafkaError as exc:
            raise DemoError(str(exc)) from None
        self._say(f"Kafka is ready ({time.monotonic() - began:.1f} s)")
        return self._kafka.broker_url

    def start_simulator(self, args: list[str]) -> None:
        process = simulator_process(
            port=self.simulator_port,
            args=[*args, "--status-delay-ms", str(SIMULATOR_STATUS_DELAY_MS)],
            log_path=self.workdir / "simulator.log",
        )
        self._start("simulator", process, timeout=30.0)

    def start_worker(self, env: Mapping[str, str]) -> None:
        process = worker_process(
            env={**env, "SMSDISPATCH_PUBLIC_URL": self.worker_url},
            web_port=self.web_port,
            data_dir=self.workdir / "worker",
            log_path=self.workdir / "worker.log",
        )
        self._start("worker", process, timeout=WORKER_START_TIMEOUT)

    def _start(self, name: str, process: ManagedProcess, timeout: float) -> None:
        # Registered before it starts: an interrupt during the start still finds it in close().
        self._children.append((name, process))
        began = time.monotonic()
        try:
            process.start(timeout=timeout)
        except ChildFailed:
            raise DemoError(f"the {name} did not start; its log is {process.log_path}.") from None
        self._say(f"the {name} is ready ({time.monotonic() - began:.1f} s)")

    async def wait_for_tenants(self, count: int, timeout: float) -> bool:  # noqa: ASYNC109 - a plain deadline
        """Wait until the worker's tenant table holds at least ``count`` tenants; False if it did not in time.

        Requests published before the worker has read sms.tenants could meet an empty table and fail as
        unknown_tenant, so traffic starts only once /health counts the tenants just registered.
        """
        async with httpx.AsyncClient(base_url=self.worker_url, timeout=2.0) as http:
            for _ in range(max(1, int(timeout / 0.2))):
                try:
                    if int((await http.get("/health")).json().get("tenants", 0)) >= count:
                        return True
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.2)
        return False

    def close(self) -> list[str]:
        """Stop the worker, the simulator and the broker (if this stack started it); return what went wrong."""
        problems: list[str] = []
        for name, process in reversed(self._children):
            try:
                process.stop(timeout=20.0)
            except Exception as exc:  # keep stopping the others whatever this one did
                problems.append(f"stopping the {name}: {type(exc).__name__}")
        self._children.clear()
        if self._kafka is not None:
            try:
                self._kafka.stop()
            except LocalKafkaError as exc:
                problems.append(str(exc))
            else:
                # The broker's data is of no use once it is gone; its log stays with the others.
                shutil.rmtree(self._kafka.config.log_dirs, ignore_errors=True)
        return problems
