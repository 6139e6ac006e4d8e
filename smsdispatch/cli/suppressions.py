"""List, add and remove opted-out numbers (the compacted sms.suppressions topic).

A request to a number on its tenant's list fails with recipient_opted_out and is not sent. Workers add numbers
themselves (Twilio error 21610, an inbound STOP); `add` records an operator's opt-out, `remove` opts the number
back in. Both are idempotent and take effect in every worker within moments.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC

from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import TypeAdapter, ValidationError

from smsdispatch.cli._common import CliError, load_settings, unreachable_kafka
from smsdispatch.client import Suppression, SuppressionChange, current_suppressions, publish_suppression_changes
from smsdispatch.contract import SuppressionSource, suppression_change
from smsdispatch.contract._fields import TenantId
from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.topics import ensure_topics

TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)
_TENANT_RULE = "must be 1 to 64 characters, each a letter, a digit, '_', '.' or '-'"
_DONE = {"add": "opted out", "remove": "opted back in"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    list_ = actions.add_parser(
        "list", help="list opted-out numbers: tenant, number, source, since", description=_list.__doc__
    )
    list_.add_argument("--tenant", metavar="TENANT", help="only this tenant's numbers")
    add = actions.add_parser(
        "add", help="opt a number out of a tenant's messages", description="Opt NUMBER out of TENANT's messages."
    )
    remove = actions.add_parser(
        "remove", help="opt a number back in", description="Opt NUMBER back in to TENANT's messages."
    )
    for action in (add, remove):
        action.add_argument("tenant", metavar="TENANT", help="the tenant id")
        action.add_argument("number", metavar="NUMBER", help="the recipient's number in E.164, such as +14155552671")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    # Checked before Kafka is contacted: bad usage is exit 2 whether or not a broker is there.
    if args.action == "list":
        if args.tenant is not None:
            _check_tenant(args.tenant)
        work = _list(settings, args.tenant)
    else:
        change = _change(args.tenant, args.number, opted_out=args.action == "add")
        work = _publish(settings, change, f"{args.tenant} {args.number}: " + _DONE[args.action])
    try:
        return asyncio.run(work)
    except (OSError, TimeoutError, KafkaConnectionError):
        raise unreachable_kafka(settings.broker) from None
    except KafkaError as exc:
        raise CliError(f"Kafka at {settings.broker} failed: {type(exc).__name__}.") from None


async def _list(settings: Settings, tenant: str | None) -> int:
    """Print every opted-out number on the list now (optionally one tenant's), one line each: the tenant, the
    number, why it is there (provider_21610, inbound_stop or operator) and since when."""
    entries = await current_suppressions(settings.broker, tenant)
    for entry in entries:
        print(describe_suppression(entry))
    if not entries:
        print(f"no opted-out numbers for {tenant}" if tenant is not None else "no opted-out numbers")
    return 0


async def _publish(settings: Settings, change: SuppressionChange, done: str) -> int:
    # Publishing to a missing topic would create it with the broker's defaults: one partition, not compacted.
    await ensure_topics(settings.broker, settings.partitions, replication_factor=settings.replication_factor)
    await publish_suppression_changes(settings.broker, [change])
    print(done)
    return 0


def describe_suppression(entry: Suppression) -> str:
    """``acme +14155552671 operator since 2026-12-01T12:00:00Z``: one line of ``suppressions list``."""
    source = entry.source.value if entry.source is not None else "unreadable-record"
    return f"{entry.tenant_id} {entry.number} {source} since {entry.since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _check_tenant(tenant: str) -> None:
    try:
        TENANT_ID.validate_python(tenant)
    except ValidationError:
        raise CliError(f"TENANT {tenant!r} {_TENANT_RULE}.", exit_code=2) from None


def _change(tenant: str, number: str, *, opted_out: bool) -> SuppressionChange:
    _check_tenant(tenant)
    try:
        return suppression_change(tenant, number, opted_out, SuppressionSource.OPERATOR)
    except ValidationError as exc:
        # The tenant is valid by now, so the number is what was refused; check_e164 says how, in a few words.
        reason = exc.errors(include_input=False)[0]["msg"].removeprefix("Value error, ").rstrip(".")
        raise CliError(f"NUMBER {number!r} {reason}.", exit_code=2) from None
