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
* **One outcome per input record.** ``emitted_through`` is the highest offset (of the tenant's partition of
  ``sms.requested``) whose record has had this outcome published. A record redelivered without a crash (a
  rebalance, a broker restart, a commit that did not land) is at or below it and is not answered twice; a
  request published again is above it and gets the recorded outcome again. Records that never reach a
  request's entry (unreadable ones, and ones forwarded to their tenant's partition) are remembered under
  :func:`origin_key`, the partition and offset they arrived at.
* Entries expire after the retention (default 7 days): the changelog topic deletes old segments, and
  :meth:`Ledger.expire` removes old entries from memory with tombstones. A request_id re-published after its
  entry expired is treated as new: idempotency holds for the retention window, not forever.

The ledger writes to the changelog itself instead of through ``table[key] = value``: Faust would pick the
partition of whatever event is current when a batch of many partitions is processed, and its buffered
``send_soon`` gives no acknowledgement to wait for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

LedgerState = Literal["sending", "done"]
_EPOCH = datetime.fromtimestamp(0, UTC)
_NEVER = datetime.max.replace(tzinfo=UTC)


class LedgerEntry(BaseModel):
    """One request's state. ``outcome`` is the outcome's JSON, exactly as it was published."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: LedgerState
    partition: int
    #: When this entry was written: a ``sending`` entry younger than the send deadline may still be in flight.
    at: datetime
    #: When the request was first marked ``sending`` (a later owner re-marks it): reconciliation looks from here.
    since: datetime | None = None
    attempts: int = 0
    outcome_topic: str | None = None
    outcome: str | None = None
    emitted_through: int | None = None

    def emitted(self, offset: int) -> bool:
        """Whether the record at ``offset`` has had its outcome published already."""
        return self.emitted_through is not None and offset <= self.emitted_through


def ledger_key(tenant_id: str, request_id: str) -> bytes:
    """request_id is unique per tenant (CONTRACT.md), so the tenant is part of the key."""
    return f"{tenant_id}\x1f{request_id}".encode()


def origin_key(partition: int, offset: int) -> bytes:
    """The entry of the record at (partition, offset) of ``sms.requested`` itself, for records that are answered
    or forwarded without a request entry. No tenant_id can hold ``\\x00``, so it never meets a ledger_key."""
    return b"\x00origin\x1f%d:%d" % (partition, offset)


class ChangelogWriter(Protocol):
    """Sends one record to the ledger's changelog; the returned awaitable completes when Kafka has it."""

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[Any]: ...


class Ledger:
    """Reads from the table's local store; writes to the store and, durably, to its changelog."""

    def __init__(self, store: MutableMapping[bytes, bytes], write_changelog: ChangelogWriter) -> None:
        self._store = store
        self._write_changelog = write_changelog
        # Each entry's ``at``, so an expiry pass need not parse every entry's JSON: at ~12 µs an entry, a week
        # of 1 request/s (600k entries) blocked the event loop for ~7 s every pass. Entries that reach the store
        # another way (the table recovering its changelog) are read once, on the next pass.
        self._ages: dict[bytes, datetime] = {}

    def get(self, key: bytes) -> LedgerEntry | None:
        """The request's entry. An entry that cannot be read counts as ``sending`` since the epoch: the request
        may have been sent, so it is reconciled (or reported ``outcome_unknown``), never sent blindly."""
        if key not in self._store:
            return None
        entry = self._entry(key)
        return entry if entry is not None else LedgerEntry(state="sending", partition=0, at=_EPOCH)

    def mark(self, key: bytes, entry: LedgerEntry) -> Awaitable[Any]:
        """Record ``entry`` now in memory; the awaitable completes once the changelog has it."""
        value = entry.model_dump_json().encode()
        self._store[key] = value
        self._ages[key] = entry.at
        return self._write_changelog(key, value, entry.partition)

    def expire(
        self,
        retention: timedelta,
        now: datetime | None = None,
        limit: int = 10_000,
        owned: Callable[[int], bool] = lambda _partition: True,
    ) -> list[Callable[[], Awaitable[Any]]]:
        """Drop entries older than ``retention`` (at most ``limit`` per call) from memory.

        Only entries of ``owned`` partitions are expired: a partition's entries are its owner's to tombstone, and
        a copy left from an earlier assignment may be older than what the current owner holds.

        Returns the tombstone writes for the changelog, not yet started, so the caller can redo failed ones.
        """
        cutoff = (now or datetime.now(UTC)) - retention
        self._learn_new_entries()
        expired: list[tuple[bytes, LedgerEntry]] = []
        for key in [key for key, at in self._ages.items() if at < cutoff]:
            if len(expired) >= limit:
                break
            entry = self._entry(key)  # the stored value decides: recovery may have brought a newer one
            if entry is None:
                self._ages.pop(key, None)
            elif entry.at < cutoff and owned(entry.partition):
                expired.append((key, entry))
            else:
                self._ages[key] = entry.at
        for key, _entry in expired:
            self._store.pop(key, None)
            self._ages.pop(key, None)
        return [partial(self._write_changelog, key, None, entry.partition) for key, entry in expired]

    def __len__(self) -> int:
        return len(self._store)

    def _learn_new_entries(self) -> None:
        for key in [key for key in self._store if key not in self._ages]:
            entry = self._entry(key)
            # An entry that cannot be read has no age to judge: it is kept, as the dispatcher would find it.
            self._ages[key] = entry.at if entry is not None else _NEVER

    def _entry(self, key: bytes) -> LedgerEntry | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            return LedgerEntry.model_validate_json(raw)
        except ValidationError:
            return None
