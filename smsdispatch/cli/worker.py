"""Run the worker: the dispatcher, the log sink and the status receiver, in one Faust worker process.

Reads the CONTRACT.md environment (SMSDISPATCH_BROKER, SMSDISPATCH_DATABASE_URL, SMSDISPATCH_ENCRYPTION_KEYS,
SMSDISPATCH_TWILIO_BASE_URL, SMSDISPATCH_PARTITIONS, SMSDISPATCH_PUBLIC_URL) and creates missing topics before
it starts. Stop it with SIGTERM or Ctrl-C: in-flight batches finish before offsets are committed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from urllib.parse import urlsplit

from smsdispatch.cli._common import CliError, load_keyring, load_settings
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
    for name, url in (
        ("SMSDISPATCH_TWILIO_BASE_URL", settings.twilio_base_url),
        ("SMSDISPATCH_PUBLIC_URL", settings.public_url),
    ):
        if url is not None and not _is_http_url(url):
            raise CliError(f"{name} must be an http:// or https:// URL with a host.", exit_code=2)

    from faust.worker import Worker

    from smsdispatch.agents.worker import build_worker
    from smsdispatch.streams.topics import check_partitions

    try:
        mismatched = asyncio.run(asyncio.wait_for(check_partitions(settings.broker, settings.partitions), timeout=30))
    except Exception as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.broker} to create the topics ({type(exc).__name__})."
        ) from None
    if mismatched:
        raise CliError(
            f"{', '.join(mismatched)} exist with another partition count than SMSDISPATCH_PARTITIONS="
            f"{settings.partitions}: set it to match, since tenants' requests and tables must share partitions."
        )
    streams = build_worker(settings, keyring)
    os.makedirs(streams.app.conf.datadir, exist_ok=True)
    worker = Worker(
        streams.app,
        loglevel=args.loglevel.upper(),
        logging_config=worker_logging(args.loglevel.upper()),
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
    return 0  # pragma: no cover - execute_from_commandline exits the process


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in (parts.hostname or "")
