"""What the dispatcher works on: a record as the stream delivered it, where it is handled, the request on its way
through the phases, and the dispatcher's options and publisher. Plain values, no behaviour beyond reading them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from smsdispatch.contract import Outcome, SmsFailed, SmsRequested
from smsdispatch.core.ledger import LedgerEntry
from smsdispatch.core.pipeline import Work
from smsdispatch.core.tenants import ReadyTenant


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One ``sms.requested`` record as the stream delivered it."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Routed:
    """A decoded record and where it is handled: here (``key``), or forwarded to ``forward_to``."""

    record: InboundRecord
    decoded: SmsRequested | SmsFailed
    #: The ledger key of a request handled on this partition; None for a failure or a forward.
    key: bytes | None
    #: For a forward: the request as it goes to its tenant's partition (``forward_to``, None = the partitioner's).
    forward_value: bytes | None = None
    forward_to: int | None = None


@dataclass(slots=True)
class Job:
    """One request on its way through the dispatcher's phases; each phase reads it and fills it in."""

    record: InboundRecord
    request: SmsRequested
    key: bytes
    work: Work[Any]
    #: The ledger's entry for the request when it arrived: None for a request never seen.
    previous: LedgerEntry | None
    tenant: ReadyTenant | None = None
    #: Set by the phase that answers the request; the phases after it do not run.
    outcome: Outcome | None = None

    @property
    def attempts_so_far(self) -> int:
        return self.previous.attempts if self.previous is not None else 0


class Publisher(Protocol):
    """Sends one record; the awaitable completes when Kafka has acknowledged it."""

    def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class DispatcherOptions:
    tenant_concurrency: int = 100
    ledger_retention: timedelta = timedelta(days=7)
    expire_every: timedelta = timedelta(minutes=10)
    #: Entries examined per pass at most, so one expiry pass never stalls the loop for long; a pass that did not
    #: get through the store goes on at the next call instead of waiting for ``expire_every``.
    expire_limit: int = 10_000
    #: A send (retries and reconciliation included) is abandoned as ``outcome_unknown`` after this long, so a
    #: ``sending`` entry older than this (plus ``fence_margin`` for clocks) cannot belong to a send in flight.
    send_deadline: float = 60.0
    fence_margin: float = 2.0
    #: Where requests belong: the partition of sms.requested for a tenant_id, or None to accept any partition.
    partition_for: Callable[[str], int | None] = field(default=lambda _tenant: None)
    #: Waits (bounded) until the tenant view has applied everything already on sms.tenants.
    tenants_caught_up: Callable[[set[str]], Awaitable[None]] | None = None
