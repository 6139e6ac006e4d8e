"""Print outcomes as they arrive on sms.dispatched and sms.failed (and sms.status when asked), one line each.

Runs until Ctrl-C, --max lines, or --idle-timeout seconds without a matching record. Records that are not a
readable outcome get an "unreadable" line. With --json each record's value is printed as one line of JSON as
it was published (records that are not JSON go to stderr), ready for jq.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from contextlib import aclosing, suppress
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from smsdispatch.cli._common import CliError, load_settings
from smsdispatch.cli.send import describe_outcome
from smsdispatch.client import TopicRecord, json_object, parse_outcome, tail_topic
from smsdispatch.contract import SmsStatus, topics

TAILABLE_TOPICS = topics.OUTCOME_TOPICS
DEFAULT_TOPICS = (topics.DISPATCHED, topics.FAILED)
EXCERPT_CHARS = 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help=f"{', '.join(TAILABLE_TOPICS)}; repeat for several (default: {' and '.join(DEFAULT_TOPICS)})",
    )
    parser.add_argument("--tenant", help="only this tenant's records")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest record, not the newest")
    parser.add_argument("--json", action="store_true", help="print each value as one line of JSON")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")
    parser.add_argument(
        "--idle-timeout", type=float, metavar="SECONDS", help="stop after SECONDS without a matching record"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    chosen = tuple(dict.fromkeys(args.topic or DEFAULT_TOPICS))
    unknown = [topic for topic in chosen if topic not in TAILABLE_TOPICS]
    if unknown:
        raise CliError(f"--topic {unknown[0]!r} is not one of {', '.join(TAILABLE_TOPICS)}.", exit_code=2)
    if args.max is not None and args.max < 1:
        raise CliError("--max must be at least 1.", exit_code=2)
    if args.idle_timeout is not None and args.idle_timeout <= 0:
        raise CliError("--idle-timeout must be a positive number of seconds.", exit_code=2)
    try:
        asyncio.run(_tail(args, settings.broker, chosen))
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how tail is meant to end
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (| head): stop quietly
        return 0
    except (OSError, KafkaError) as exc:
        raise CliError(f"cannot read from Kafka at {settings.broker} ({type(exc).__name__}).") from None
    return 0


async def _tail(args: argparse.Namespace, broker: str, chosen: tuple[str, ...]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    last_match = loop.time()
    printed = 0

    async def stop_when_idle(idle: float) -> None:
        while not stop.is_set():
            await asyncio.sleep(min(idle, 0.2))
            if loop.time() - last_match >= idle:
                stop.set()

    watchdog = asyncio.create_task(stop_when_idle(args.idle_timeout)) if args.idle_timeout else None
    try:
        records = tail_topic(broker, chosen, from_beginning=args.from_beginning, stop=stop)
        async with aclosing(records):
            async for record in records:
                line = format_record(record, tenant=args.tenant, as_json=args.json)
                if line is None:
                    continue
                print(line, flush=True)
                last_match = loop.time()
                printed += 1
                if args.max is not None and printed >= args.max:
                    return
    finally:
        if watchdog is not None:
            watchdog.cancel()


def format_record(record: TopicRecord, *, tenant: str | None = None, as_json: bool = False) -> str | None:
    """The line to print for ``record``, or None when it belongs to another tenant (or, with JSON, is not JSON)."""
    document = json_object(record.value)
    owner = document.get("tenant_id") if document is not None else None
    if not isinstance(owner, str):
        owner = record.key.decode(errors="replace") if record.key else None
    if tenant is not None and owner != tenant:
        return None
    if as_json:
        if document is None:
            print(f"skipped {_where(record)}: {_excerpt(record.value)}", file=sys.stderr, flush=True)
            return None
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return describe_record(record)


def describe_record(record: TopicRecord) -> str:
    """One readable line: an outcome, a delivery receipt, or what is known about an unreadable record."""
    outcome = parse_outcome(record)
    if outcome is not None:
        return describe_outcome(outcome)
    if record.topic == topics.STATUS and record.value is not None:
        try:
            return describe_status(SmsStatus.model_validate_json(record.value))
        except ValidationError:
            pass
    stamp = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
    return f"{stamp:%H:%M:%S} unreadable {_where(record)}: {_excerpt(record.value)}"


def describe_status(status: SmsStatus) -> str:
    code = f" [{status.provider_code}]" if status.provider_code is not None else ""
    return (
        f"{status.received_at:%H:%M:%S} status {status.tenant_id}/{status.request_id or '-'} "
        f"{status.provider_message_id}: {status.status}{code}"
    )


def _silence_stdout() -> None:
    # Python flushes stdout once more at exit; into the closed pipe that would print a second error.
    # ValueError/OSError: stdout is not a real file (a test's capture), so nothing will be flushed into a pipe.
    with suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _where(record: TopicRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _excerpt(value: bytes | None) -> str:
    if value is None:
        return "(no value)"
    text = value.decode(errors="replace")
    return repr(text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else ""))
