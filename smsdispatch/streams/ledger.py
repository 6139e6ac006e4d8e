"""The idempotency ledger: what happened to each request_id, durable in a Kafka changelog.

Guarantees (and their limits):

* Before the worker calls Twilio for a request, a ``sending`` entry for it is *acknowledged by Kafka*
  (:meth:`Ledger.mark` returns a future; the dispatcher awaits all of a batch's futures before any HTTP call).
  A crash after that point leaves ``sending`` behind, and the next delivery of the request reconciles with
  Twilio instead of sending blindly.
* After the outcome is known, a ``done`` entry holds the outcome itself, so a request_id seen again (a Kafka
  redelivery, or a producer publishing twice) re-emits that outcome and never sends a second SMS.
* Entries live in the partition of the request's source event (the tenant's partition of ``sms.requested``),
  so the worker that owns a tenant's partition owns its ledger entries. The Faust table recovers them from
  the changelog on every (re)assignment.
* Entries expire after the retention (default 7 days): the changelog topic deletes old segments, and
  :meth:`Ledger.expire` removes old entries from memory with tombstones. A request_id re-published after its
  entry expired is treated as new: idempotency holds for the retention window, not forever.

The ledger writes to the changelog itself instead of through ``table[key] = value``: Faust would pick the
partition of whatever event is current when a batch of many partitions is processed, and its buffered
``send_soon`` gives no acknowledgement to wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

LedgerState = Literal["sending", "done"]


class LedgerEntry(BaseModel):
    """One request's state. ``outcome`` is the outcome's JSON, exactly as it was published."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: LedgerState
    partition: int
    at: datetime
    attempts: int = 0
    outcome_topic: str | None = None
    outcome: str | None = None


def ledger_key(tenant_id: str, request_id: str) -> bytes:
    """request_id is unique per tenant (CONTRACT.md), so the tenant is part of the key."""
    return f"{tenant_id}\x1f{request_id}".encode()


class ChangelogWriter(Protocol):
    """Sends one record to the ledger's changelog; the returned awaitable completes when Kafka has it."""

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[Any]: ...


class Ledger:
    """Reads from the table's local store; writes to the store and, durably, to its changelog."""

    def __init__(self, store: MutableMapping[bytes, bytes], write_changelog: ChangelogWriter) -> None:
        self._store = store
        self._write_changelog = write_changelog

    def get(self, key: bytes) -> LedgerEntry | None:
        raw = self._store.get(key)
        return LedgerEntry.model_validate_json(raw) if raw is not None else None

    def mark(self, key: bytes, entry: LedgerEntry) -> Awaitable[Any]:
        """Record ``entry`` now in memory; the awaitable completes once the changelog has it."""
        value = entry.model_dump_json().encode()
        self._store[key] = value
        return self._write_changelog(key, value, entry.partition)

    def expire(
        self, retention: timedelta, now: datetime | None = None, limit: int = 10_000
    ) -> list[Callable[[], Awaitable[Any]]]:
        """Drop entries older than ``retention`` (at most ``limit`` per call) from memory.

        Returns the tombstone writes for the changelog, not yet started, so the caller can redo failed ones.
        """
        cutoff = (now or datetime.now(UTC)) - retention
        expired = [(key, entry) for key, entry in self._entries() if entry.at < cutoff][:limit]
        for key, _entry in expired:
            self._store.pop(key, None)
        return [partial(self._write_changelog, key, None, entry.partition) for key, entry in expired]

    def __len__(self) -> int:
        return len(self._store)

    def _entries(self) -> Iterator[tuple[bytes, LedgerEntry]]:
        for key, raw in list(self._store.items()):
            yield key, LedgerEntry.model_validate_json(raw)


class InMemoryChangelog:
    """A changelog for tests and for running the dispatcher without Kafka: records every write in order."""

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, bytes | None, int]] = []

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[None]:
        self.writes.append((key, value, partition))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future
