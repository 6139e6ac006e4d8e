"""The worker and the simulator as child processes, for tests, benchmarks and the demo.

A worker under test runs as its own process, as in production: Faust owns its event loop and its signals,
and a test can SIGKILL it mid-batch to prove that nothing is lost or sent twice. Each child's output goes to a
log file, which tests read (e.g. to check that no secret was logged) and which is shown when startup fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from smsdispatch.tools.localkafka import parent_death_hook

SMSDISPATCH = [sys.executable, "-m", "smsdispatch"]


class ChildFailed(RuntimeError):
    """A child process exited or did not become ready; the message ends with the tail of its log."""


class ManagedProcess:
    """A child process with its output in ``log_path``; ready when ``ready_url`` answers 200."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        ready_url: str,
        die_with_parent: bool = True,
    ) -> None:
        self.argv = list(argv)
        # SIGTERM when we die, however we die (even SIGKILL): a killed test run or demo leaves nothing behind.
        # Linux only, and tied to the thread that started the child: start children from the main thread.
        self._preexec = parent_death_hook() if die_with_parent else None
        self.env = dict(env)
        self.log_path = log_path
        self.ready_url = ready_url
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.argv,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=self._preexec,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ChildFailed(f"{self.argv[3:5]} exited with {self._process.returncode}:\n{self.log_tail()}")
            if _answers(self.ready_url):
                return self
            time.sleep(0.2)
        self.kill()
        raise ChildFailed(f"{self.argv[3:5]} was not ready within {timeout:g}s:\n{self.log_tail()}")

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the child's web server (the ready URL without its path)."""
        parts = urllib.parse.urlsplit(self.ready_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (the worker finishes its batch and commits); SIGKILL after ``timeout``."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._finish()

    def kill(self) -> int | None:
        """SIGKILL: a crash, with no chance to finish or commit anything."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        return self._finish()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _finish(self) -> int | None:
        code = self._process.returncode if self._process is not None else None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def worker_process(
    *, env: Mapping[str, str], web_port: int, data_dir: Path, log_path: Path, loglevel: str = "info"
) -> ManagedProcess:
    """``smsdispatch worker`` with ``env`` (the SMSDISPATCH_* variables) on top of this process's environment;
    ready when ``/ready`` answers 200, i.e. once its tables are restored and it handles records."""
    argv = [*SMSDISPATCH, "worker", "--web-port", str(web_port), "--data-dir", str(data_dir), "--loglevel", loglevel]
    return ManagedProcess(
        argv, env={**os.environ, **env}, log_path=log_path, ready_url=f"http://127.0.0.1:{web_port}/ready"
    )


def simulator_process(*, port: int, args: Sequence[str], log_path: Path) -> ManagedProcess:
    """``smsdispatch simulator --port PORT ARGS…``; ready when its ``/_sim/messages`` answers."""
    argv = [*SMSDISPATCH, "simulator", "--port", str(port), *args]
    return ManagedProcess(
        argv, env=dict(os.environ), log_path=log_path, ready_url=f"http://127.0.0.1:{port}/_sim/messages"
    )


def worker_metric(worker_url: str, name: str, labels: str = "") -> float:
    """The sum of a metric's samples on a worker's ``/metrics``; ``labels`` narrows it (``'pipeline="logsink"'``)."""
    with urllib.request.urlopen(f"{worker_url}/metrics", timeout=5) as response:  # noqa: S310 - a loopback URL
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if (line.startswith(name + "{") or line.startswith(name + " ")) and labels in line
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a loopback URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
