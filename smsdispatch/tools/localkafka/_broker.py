"""``LocalKafka``: start, probe and stop one single-node KRaft broker in its own detached JVM."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smsdispatch.tools.localkafka._cds import class_data_options
from smsdispatch.tools.localkafka._config import (
    DEFAULT_PORT,
    HOST,
    BrokerConfig,
    default_data_dir,
    new_cluster_id,
    render_server_properties,
)
from smsdispatch.tools.localkafka._errors import LocalKafkaError
from smsdispatch.tools.localkafka._jars import ensure_jars, kafka_home, packaged_text
from smsdispatch.tools.localkafka._probe import ProtocolError, fetch_metadata
from smsdispatch.tools.localkafka._process import (
    is_alive,
    parent_death_hook,
    port_is_free,
    runs_with_argument,
    spawn_detached,
    wait_until,
)
from smsdispatch.tools.localkafka._tools import find_java

# Sized for a 2-core, 24 GB machine that also runs the tests; far below 512 MB the log cleaner can OOM.
# KAFKA_HEAP_OPTS overrides it, as it does for Kafka's own scripts.
DEFAULT_HEAP_OPTS = "-Xms512m -Xmx1g"
# A one-partition topic the readiness probe creates, so ``start`` returns only once partitions get leaders.
READY_TOPIC = "smsdispatch.ready"
# C1-only JIT: the broker starts ~30% sooner and its compiler threads take less CPU from the tests on a
# 2-core machine; a local broker never needs C2's peak throughput. KAFKA_JVM_PERFORMANCE_OPTS overrides it.
DEFAULT_JVM_OPTS = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError"
_LOG_ROTATE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class KafkaStatus:
    """What ``LocalKafka.status()`` found."""

    running: bool  # a broker JVM started from this data dir is alive
    answering: bool  # and it answers metadata requests on its port
    pid: int | None
    bootstrap: str
    log_file: Path


class LocalKafka:
    """One local broker: ``port`` on 127.0.0.1, files (pid, log, data) in ``data_dir``.

    The controller listens on ``controller_port`` (default ``port + 1``). ``die_with_parent`` makes the JVM
    get SIGTERM when the thread that started it ends (Linux): for test sessions, not for ``kafka start``.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        data_dir: Path | None = None,
        *,
        controller_port: int | None = None,
        jar_cache: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.config = BrokerConfig(
            port=port,
            controller_port=port + 1 if controller_port is None else controller_port,
            data_dir=(data_dir or default_data_dir(port)).expanduser().absolute(),
        )
        self.jar_cache = jar_cache or kafka_home()
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"LocalKafka(port={self.port}, data_dir={str(self.data_dir)!r})"

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the form aiokafka and kcat take."""
        return self.config.bootstrap

    @property
    def broker_url(self) -> str:
        """``kafka://127.0.0.1:PORT``, the form Faust and ``SMSDISPATCH_BROKER`` take."""
        return f"kafka://{self.config.bootstrap}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    def status(self) -> KafkaStatus:
        pid = self._running_pid()
        return KafkaStatus(
            running=pid is not None,
            answering=pid is not None and self._answers(),
            pid=pid,
            bootstrap=self.bootstrap,
            log_file=self.log_file,
        )

    def start(self, timeout: float = 120.0, progress: Callable[[str], None] | None = None) -> bool:
        """Start the broker and return once it serves metadata and can host a partition.

        Returns False when it was already running (after waiting for it to answer), True when started.
        Raises LocalKafkaError (MissingToolError for a missing Java or Maven) with a one-sentence reason.
        """
        if self._running_pid() is not None:
            self._wait_ready(timeout)
            return False
        # Java first: a missing tool is the fix a newcomer needs before any port question matters.
        java = find_java()
        for port in (self.config.port, self.config.controller_port):
            if not port_is_free(HOST, port):
                raise LocalKafkaError(
                    f"{HOST}:{port} is already in use by another process: stop it or pick another --port."
                )
        libs = ensure_jars(self.jar_cache, progress)
        self._prepare_data_dir(java, libs)
        if progress is not None:
            progress(f"Starting Kafka on {self.bootstrap}; log: {self.log_file}")
        self._launch(java, libs)
        try:
            self._wait_ready(timeout)
        except LocalKafkaError:
            self.stop()
            raise
        return True

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout`` s) and wait for the JVM to be gone.

        Returns False when it was not running.
        """
        pid = self._running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not self._wait_gone(pid, 15.0):
                raise LocalKafkaError(f"Kafka (pid {pid}) did not exit even after SIGKILL.")
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return True

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._process is not None and self._process.pid == pid and self._process.poll() is not None:
            return None
        return pid if runs_with_argument(pid, str(self.properties_file)) else None

    def _answers(self, auto_create: bool = False) -> bool:
        try:
            metadata = fetch_metadata(
                HOST, self.port, [READY_TOPIC] if auto_create else [], auto_create=auto_create, timeout=2.0
            )
        except (OSError, ProtocolError):
            return False
        if not metadata.brokers:
            return False
        return not auto_create or (READY_TOPIC in metadata.topics and metadata.topics[READY_TOPIC].ready)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._answers(auto_create=True):
            if self._process is not None and self._process.poll() is not None:
                raise LocalKafkaError(
                    f"Kafka exited with code {self._process.returncode} while starting; see {self.log_file}."
                )
            if self._process is None and self._running_pid() is None:
                raise LocalKafkaError(f"Kafka exited while starting; see {self.log_file}.")
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"Kafka did not answer on {self.bootstrap} within {timeout:.0f} s; see {self.log_file}."
                )
            time.sleep(0.25)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        return wait_until(lambda: not is_alive(pid), timeout, interval=0.2)

    def _prepare_data_dir(self, java: Path, libs: Path) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.properties_file.write_text(render_server_properties(self.config), encoding="utf-8")
            (self.data_dir / "log4j2.properties").write_text(packaged_text("log4j2.properties"), "utf-8")
            if self.log_file.exists() and self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(self.log_file, self.log_file.with_suffix(".log.1"))
        except OSError as exc:
            raise LocalKafkaError(f"Cannot prepare the Kafka data directory {self.data_dir}: {exc}.") from exc
        if not (self.config.log_dirs / "meta.properties").exists():
            self._format_storage(java, libs)

    def _format_storage(self, java: Path, libs: Path) -> None:
        command = [
            *self._java_command(java, libs, heap_opts="-Xmx256m"),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(self.properties_file),
            "--ignore-formatted",
        ]
        with self.log_file.open("ab") as log:
            completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=300
            )
        if completed.returncode != 0:
            raise LocalKafkaError(
                f"Formatting Kafka's storage failed (exit code {completed.returncode}); see {self.log_file}."
            )

    def _launch(self, java: Path, libs: Path) -> None:
        heap_opts = os.environ.get("KAFKA_HEAP_OPTS") or DEFAULT_HEAP_OPTS
        command = [*self._java_command(java, libs, heap_opts, dump_classes=True), "kafka.Kafka"]
        command.append(str(self.properties_file))
        with self.log_file.open("ab") as log:
            log.write(f"\n==== smsdispatch: starting Kafka on {self.bootstrap} at {time.ctime()}\n".encode())
        if self.die_with_parent:
            # Our own child, so the kernel can signal it when we die; stop() reaps it.
            with self.log_file.open("ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                    command,
                    cwd=self.data_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=parent_death_hook(),
                )
            pid = self._process.pid
        else:
            try:
                pid = spawn_detached(command, self.log_file, self.data_dir)
            except OSError as exc:
                raise LocalKafkaError(f"Could not launch Kafka: {exc}.") from exc
        self.pid_file.write_text(f"{pid}\n", encoding="utf-8")

    def _java_command(self, java: Path, libs: Path, heap_opts: str, dump_classes: bool = False) -> list[str]:
        jvm_opts = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or DEFAULT_JVM_OPTS
        return [
            str(java),
            *shlex.split(heap_opts),
            *shlex.split(jvm_opts),
            *class_data_options(java, libs, self.jar_cache, dump=dump_classes),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
        ]
