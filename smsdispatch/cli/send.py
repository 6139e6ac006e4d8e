"""Publish one SMS request to sms.requested; with --wait, print its outcome when the worker has sent it.

Exit code with --wait: 0 when dispatched, 1 when it failed or no outcome came within --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pydantic import ValidationError

from smsdispatch.cli._common import CliError, bad_usage, load_settings, unreachable_kafka
from smsdispatch.client import SmsClient, new_request_id
from smsdispatch.contract import SmsDispatched, SmsRequested
from smsdispatch.contract.messages import Outcome
from smsdispatch.contract.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, help="tenant_id")
    parser.add_argument("--to", required=True, help="recipient in E.164, e.g. +14155552671")
    parser.add_argument("--body", required=True, help="message text, 1-1600 characters")
    parser.add_argument("--request-id", help="idempotency key (default: a new random id)")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="echoed on outcomes")
    parser.add_argument("--wait", action="store_true", help="wait for the outcome and print it")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait (60)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    metadata = {}
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--metadata {item!r} is not KEY=VALUE.", exit_code=2)
        metadata[key] = value
    try:
        # Validated before Kafka is touched: a bad --to is bad usage (2) whether or not Kafka is up.
        request = SmsRequested(
            request_id=args.request_id or new_request_id(),
            tenant_id=args.tenant,
            to=args.to,
            body=args.body,
            metadata=metadata,
        )
    except ValidationError as exc:
        raise bad_usage(exc, {"tenant_id": "--tenant"}, whole="the request") from None
    try:
        return asyncio.run(_send(args, settings, request))
    except TimeoutError as exc:
        raise CliError(str(exc) + ".") from None
    except OSError:
        raise unreachable_kafka(settings.broker) from None


async def _send(args: argparse.Namespace, settings: Settings, request: SmsRequested) -> int:
    started_ms = int(time.time() * 1000) - 5_000
    topics = {"partitions": settings.partitions, "replication_factor": settings.replication_factor}
    async with SmsClient(settings.broker, **topics) as client:
        await client.publish(request)
        print(f"published {request.request_id} for {request.tenant_id}")
        if not args.wait:
            return 0
        found = await client.wait_for(
            request.request_id, timeout=args.timeout, since_ms=started_ms, tenant=request.tenant_id
        )
        outcome = found[request.request_id]
    print(outcome.model_dump_json() if args.json else describe_outcome(outcome))
    return 0 if isinstance(outcome, SmsDispatched) else 1


def describe_outcome(outcome: Outcome) -> str:
    """One readable line per outcome (tail and send --wait)."""
    stamp = (
        f"{outcome.dispatched_at:%H:%M:%S}" if isinstance(outcome, SmsDispatched) else f"{outcome.failed_at:%H:%M:%S}"
    )
    who = f"{outcome.tenant_id or '-'}/{outcome.request_id or '-'}"
    if isinstance(outcome, SmsDispatched):
        return (
            f"{stamp} dispatched {who} to {outcome.to}: {outcome.status} {outcome.provider_message_id} "
            f"({outcome.segments} segment(s), {outcome.encoding}, {outcome.attempts} attempt(s))"
        )
    code = f" [{outcome.error.provider_code}]" if outcome.error.provider_code is not None else ""
    return f"{stamp} failed {who} to {outcome.to or '-'}: {outcome.error.code.value}{code} {outcome.error.message}"
