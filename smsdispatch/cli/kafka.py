"""Run a local single-node Apache Kafka 4 broker (KRaft) on 127.0.0.1, no Docker needed.

start   fetch the broker's jars once (Maven), start it detached, return when it answers; harmless if running
stop    stop it cleanly (SIGTERM, then SIGKILL after a timeout) and wait until the JVM is gone
status  exit 0 when it runs and answers, 1 otherwise

Needs Java 17+ (and Maven for the first start). Files: pid, log and data under --data-dir
(default ~/.local/state/smsdispatch/kafka-PORT); jars cached in ~/.cache/smsdispatch (SMSDISPATCH_KAFKA_HOME).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smsdispatch.cli._common import CliError
from smsdispatch.tools.localkafka import DEFAULT_PORT, KAFKA_VERSION, LocalKafka, LocalKafkaError


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    # The controller listens on port + 1, so that one must be a valid port too.
    if not 1 <= port <= 65534:
        raise argparse.ArgumentTypeError(f"{port} is not a port between 1 and 65534")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("action", choices=["start", "stop", "status"], help="what to do with the broker")
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"client port on 127.0.0.1 (default {DEFAULT_PORT}; the KRaft controller takes PORT+1)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="pid, log and data files (default ~/.local/state/smsdispatch/kafka-PORT)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds start waits for the broker to answer, and stop for it to exit (default 120)",
    )


def run(args: argparse.Namespace) -> int:
    broker = LocalKafka(port=args.port, data_dir=args.data_dir)
    try:
        if args.action == "start":
            return _start(broker, args.timeout)
        if args.action == "stop":
            return _stop(broker, args.timeout)
        return _status(broker)
    except LocalKafkaError as exc:
        raise CliError(str(exc), 1) from None


def _start(broker: LocalKafka, timeout: float) -> int:
    started = broker.start(timeout=timeout, progress=lambda line: print(line, file=sys.stderr, flush=True))
    pid = broker.status().pid
    if started:
        print(f"Kafka {KAFKA_VERSION} started on {broker.bootstrap} (pid {pid}).")
    else:
        print(f"Kafka is already running on {broker.bootstrap} (pid {pid}); nothing to do.")
    print(f"Bootstrap: {broker.bootstrap}   (SMSDISPATCH_BROKER={broker.broker_url})")
    print(f"Log: {broker.log_file}")
    return 0


def _stop(broker: LocalKafka, timeout: float) -> int:
    if broker.stop(timeout=timeout):
        print(f"Kafka on {broker.bootstrap} stopped.")
    else:
        print(f"Kafka is not running on {broker.bootstrap} (data dir {broker.data_dir}); nothing to stop.")
    return 0


def _status(broker: LocalKafka) -> int:
    status = broker.status()
    if status.running and status.answering:
        print(f"Kafka is running on {status.bootstrap} (pid {status.pid}); log: {status.log_file}")
        return 0
    if status.running:
        print(f"Kafka (pid {status.pid}) runs but does not answer on {status.bootstrap} yet; log: {status.log_file}")
        return 1
    print(f"Kafka is not running on {status.bootstrap} (data dir {broker.data_dir}).")
    return 1
