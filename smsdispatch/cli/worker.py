"""Run the worker: the dispatcher, the log sink, status polling, tenant webhooks and the receivers of Twilio's
webhooks (status callbacks, inbound STOP/START) and of MSG91's delivery reports, in one Faust worker process.

Reads the SMSDISPATCH_* environment (every variable is in docs/contract.md; the essential ones are
SMSDISPATCH_BROKER, SMSDISPATCH_DATABASE_URL, SMSDISPATCH_ENCRYPTION_KEYS, SMSDISPATCH_PUBLIC_URL) and creates
missing topics before it starts. Stop it with SIGTERM or Ctrl-C: in-flight work finishes (within
SMSDISPATCH_DRAIN_SECONDS) before offsets are committed.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from smsdispatch.cli._common import CliError, check_default_provider, load_keyring, load_settings, twilio_base_url
from smsdispatch.cli._logging import worker_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web-port", type=int, help="port of /health, /ready, /metrics and the status receiver (6066)")
    parser.add_argument("--data-dir", help="the worker's local state directory (~/.local/state/smsdispatch/worker)")
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.web_port is not None:
        overrides["web_port"] = args.web_port
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    settings = load_settings(**overrides)
    keyring = load_keyring(settings)
    twilio_base_url(settings)
    check_default_provider(settings)
    if settings.public_url is not None and not _is_http_url(settings.public_url):
        raise CliError("SMSDISPATCH_PUBLIC_URL must be an http:// or https:// URL with a host.", exit_code=2)

    from smsdispatch.contract.topics import CONTRACT_TOPICS
    from smsdispatch.runtime.app import changelog_specs
    from smsdispatch.runtime.launch import run_worker, use_uvloop
    from smsdispatch.runtime.topics import TopicsNotVisible, check_partitions
    from smsdispatch.runtime.worker import build_worker

    try:
        replicas, specs = settings.replication_factor, (*CONTRACT_TOPICS, *changelog_specs(settings))
        checking = check_partitions(settings.broker, settings.partitions, specs, replication_factor=replicas)
        mismatched = asyncio.run(asyncio.wait_for(checking, timeout=30))
    except TopicsNotVisible as exc:  # reached and created, but the broker does not describe them
        raise CliError(f"Kafka at {settings.broker}: {exc}.") from None
    except Exception as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.broker} to create the topics ({type(exc).__name__})."
        ) from None
    if mismatched:
        raise CliError(
            f"{', '.join(mismatched)} exist with another partition count than SMSDISPATCH_PARTITIONS="
            f"{settings.partitions}: set it to match, since tenants' requests and the worker's state must share "
            "partitions."
        )
    use_uvloop()  # before the app exists: Faust takes its loop when first asked
    streams = build_worker(settings, keyring)
    os.makedirs(streams.app.conf.datadir, exist_ok=True)
    _lock = lock_data_dir(Path(streams.app.conf.datadir))  # held until the process exits
    run_worker(
        streams,
        loglevel=args.loglevel.upper(),
        logging_config=worker_logging(args.loglevel.upper(), settings.log_format),
        stop_seconds=max(settings.stop_seconds, settings.drain_seconds + 5),
    )
    return 0  # pragma: no cover - Faust's worker exits the process


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Take the data dir for this process, or raise CliError: two workers sharing one would corrupt each
    other's RocksDB files (RocksDB's own lock only fails later, when a partition's files are first opened)."""
    handle = (data_dir / ".smsdispatch-worker.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CliError(
            f"--data-dir {data_dir} is in use by another worker ({holder}): give each worker its own --data-dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in (parts.hostname or "")
