"""How a batch of outcomes changes the dispatch log, as a few set-based SQL statements.

Every rule is evaluated by the database inside ``INSERT … ON CONFLICT DO UPDATE`` (or ``UPDATE``), never by
reading a row into Python and writing it back, so two writers racing on the same row still end in the
right state. The rules:

- **One row per (tenant_id, request_id).** request_id is unique per tenant only (the public contract), so two
  tenants using the same request_id get two rows that never touch each other. Outcomes upsert on that
  primary key; a duplicate or replay changes nothing. An outcome with no tenant (``SmsFailed`` of an
  unreadable record) is stored under tenant_id "" (``rows.NO_TENANT``); tenant_id is never NULL.
- **A row belongs to one message.** Once a row holds a provider_message_id, a keyed outcome naming a
  different SID changes nothing in that row (the ``WHERE`` of the ``DO UPDATE``): a receipt for another
  message cannot touch it. Outcomes without a SID (``SmsFailed``) still apply. One exception, since the
  dispatched outcome is the worker's own word on which message a request became: a row that only receipts
  made (no ``dispatched_at``) and that names another SID is taken over whole by ``sms.dispatched``, so a
  receipt naming the request with someone else's message, arriving before the row, cannot keep it either.
- **Why the tenant and the SID must both match:** a status callback is signed with the *sending* tenant's
  Twilio token, and nothing stops tenant B from signing one that names tenant A's request_id and A's SID.
  The worker publishes it as B's receipt; with the row keyed by tenant it can only reach B's own rows, so
  it can neither mark A's message failed nor move A's row to tenant B.
- **Status only moves forward** by rank (``rows.STATUS_RANK``): accepted/scheduled < queued < sending < sent
  < final (delivered, undelivered, failed, canceled). A lower or equal rank never replaces the stored status,
  so a late ``sent`` after ``delivered`` is ignored and one final state never replaces another. Statuses we
  do not know (``read``, ``partially_delivered`` …) rank 0: stored on a new row, never over a known one.
- **Fields fill in, never blank out.** provider_message_id, to_number, segments, attempts, … take the
  incoming value when it has one and keep the stored one otherwise, so ``sms.dispatched`` arriving after a
  receipt completes the row without touching its status. (tenant_id is part of the key, so never changes.)
- **Error fields follow the status.** error_code / error_message / provider_code are replaced only when the
  status advances; otherwise they are only filled if still empty (a stale receipt cannot relabel a failure).
- **updated_at is the latest outcome time seen** (dispatched_at / failed_at / received_at), not wall-clock.
- **SmsFailed without a request_id** (the record was unreadable) is keyed ``unreadable:<sha256 of raw>``
  (``rows.unreadable_request_id``): the failure shows in the log and summary, and a redelivery of the same
  bytes stays one row. Identical unreadable payloads of the same tenant therefore share a row.
- **SmsStatus without a request_id** is parked in ``notification_dispatch_pending_receipt`` (once per tenant,
  SID and status), then every parked receipt for which a row of the *same tenant* carries its SID is applied
  to that row and deleted. So a receipt for a known SID lands at once, and one that overtook its
  ``sms.dispatched`` lands when that arrives. A receipt parked by tenant B naming A's SID never matches A's
  row (it waits until purged), and, being keyed by B's tenant, cannot stop A's identical receipt from
  being parked and applied. A receipt *with* a request_id upserts like any outcome and creates the row if
  needed.

Outcomes are applied in order, in runs of the same kind, each run as one ``executemany``. Concurrent writers:
SQLite serialises them (``BEGIN IMMEDIATE``); on PostgreSQL each transaction first takes its tenants'
advisory locks (``lock_tenants``), so same-tenant writers queue rather than deadlock.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    String,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from smsdispatch.adapters.storage.rows import (
    STATUS_RANK,
    LoggedOutcome,
    is_keyed,
    parked_receipt_values,
    row_values,
    status_rank,
)
from smsdispatch.adapters.storage.tables import UtcDateTime, dispatch_log, pending_receipts
from smsdispatch.contract import SmsStatus

# Filled from the incoming outcome when it has a value, kept otherwise. (Not tenant_id: it is in the key.)
_FILL_COLUMNS = (
    "provider",
    "provider_message_id",
    "to_number",
    "segments",
    "attempts",
    "resend_of",
    "requested_at",
    "encoding",
    "dispatched_at",
    "metadata",
)
# Describe the current status: replaced when the status advances, otherwise only filled if empty.
_STATUS_BOUND_COLUMNS = ("error_code", "error_message", "provider_code")
_LOCK_TENANT = text("SELECT pg_advisory_xact_lock(:key)")
# Keeps IN (...) lists well under every driver's bind-parameter limit.
_SID_CHUNK = 500


async def apply_batch(connection: AsyncConnection, outcomes: Sequence[LoggedOutcome]) -> None:
    """Write ``outcomes`` in order inside the caller's transaction."""
    dialect_name = connection.dialect.name
    if dialect_name == "postgresql":
        await lock_tenants(connection, {outcome.tenant_id for outcome in outcomes})
    for keyed, group in itertools.groupby(outcomes, key=is_keyed):
        run = list(group)
        if keyed:
            rows = [_full_row(row_values(outcome)) for outcome in run]
            await connection.execute(upsert_statement(dialect_name), rows)
            sids = {row["provider_message_id"] for row in rows if row["provider_message_id"] is not None}
        else:
            receipts = [outcome for outcome in run if isinstance(outcome, SmsStatus)]
            await connection.execute(
                park_statement(dialect_name), [parked_receipt_values(receipt) for receipt in receipts]
            )
            sids = {receipt.provider_message_id for receipt in receipts}
        if sids:
            await drain_parked_receipts(connection, sids=sids)


async def lock_tenants(connection: AsyncConnection, tenant_ids: Collection[str | None]) -> None:
    """PostgreSQL only: hold each tenant's advisory lock until the transaction ends.

    Every row an outcome touches (its request's row, its SID's parked receipts) belongs to its tenant (the
    tenant is part of both tables' keys, and a parked receipt applies only to its own tenant's row), so
    writers of different tenants never conflict and run in parallel, while two writers of the same tenant
    (a rebalance overlap, or the sink and a sweep) queue instead of deadlocking on the log and
    pending-receipt rows they lock in opposite orders, or each missing the other's uncommitted receipt.
    Locks are taken in sorted key order so two batches never wait on each other in a cycle.
    """
    for key in sorted({_tenant_lock_key(tenant_id) for tenant_id in tenant_ids}):
        await connection.execute(_LOCK_TENANT, {"key": key})


def _tenant_lock_key(tenant_id: str | None) -> int:
    digest = hashlib.sha256(b"smsdispatch.tenant:" + (tenant_id or "").encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def drain_parked_receipts(
    connection: AsyncConnection, *, sids: Collection[str] | None = None, tenant_id: str | None = None
) -> int:
    """Apply parked receipts for which a row of the same tenant now has their SID, deleting them; return how
    many were applied.

    Limited to the SIDs in ``sids`` and/or to one tenant when given. Receipts are applied oldest first, so
    of two final states the one Twilio reported first wins, as if they had arrived after their row. A
    receipt whose SID only another tenant's row carries stays parked: it must never touch that row.
    """
    condition: ColumnElement[bool] = exists().where(
        dispatch_log.c.provider_message_id == pending_receipts.c.provider_message_id,
        dispatch_log.c.tenant_id == pending_receipts.c.tenant_id,
    )
    if tenant_id is not None:
        condition &= pending_receipts.c.tenant_id == tenant_id
    chunks: list[list[str] | None] = [None] if sids is None else list(_chunked(sorted(sids), _SID_CHUNK))
    applied = 0
    for chunk in chunks:
        where = condition if chunk is None else condition & pending_receipts.c.provider_message_id.in_(chunk)
        result = await connection.execute(delete(pending_receipts).where(where).returning(*pending_receipts.c))
        parked = sorted(result.mappings().all(), key=lambda receipt: receipt["received_at"])
        if parked:
            await connection.execute(
                receipt_update_statement(),
                [
                    {
                        "receipt_sid": receipt["provider_message_id"],
                        "receipt_status": receipt["status"],
                        "receipt_rank": status_rank(receipt["status"]),
                        "receipt_provider_code": receipt["provider_code"],
                        "receipt_tenant_id": receipt["tenant_id"],
                        "receipt_received_at": receipt["received_at"],
                    }
                    for receipt in parked
                ],
            )
        applied += len(parked)
    return applied


def _full_row(values: dict[str, Any]) -> dict[str, Any]:
    # executemany needs every row to bind the same parameters; None means "this outcome does not say".
    return {column.name: values.get(column.name) for column in dispatch_log.columns}


def _chunked(items: list[str], size: int) -> Iterator[list[str]]:
    return (items[start : start + size] for start in range(0, len(items), size))


def _insert(dialect_name: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"the dispatch log supports sqlite and postgresql, not {dialect_name!r}")


def _rank_sql(status: ColumnElement[Any]) -> ColumnElement[int]:
    # The ranks are written into the SQL, not bound: as bind parameters they were 152 of the upsert's 169, each
    # processed again for every row, and most of the log sink's CPU (about 90 of ~120 µs a row).
    whens = [(_sql_string(name), literal_column(str(rank), Integer())) for name, rank in STATUS_RANK.items()]
    return case(*whens, value=status, else_=literal_column("0", Integer()))


def _sql_string(constant: str) -> ColumnElement[str]:
    if not constant.replace("_", "").isalpha():  # our own status names: nothing here needs quoting rules
        raise ValueError(f"not a status name: {constant!r}")
    return literal_column(f"'{constant}'", String())


@functools.cache
def upsert_statement(dialect_name: str) -> Insert:
    """``INSERT … ON CONFLICT (tenant_id, request_id) DO UPDATE … WHERE`` applying the rules above; bind one
    dict per row."""
    insert = _insert(dialect_name, dispatch_log)
    stored, incoming = dispatch_log.c, insert.excluded
    advances = _rank_sql(stored.status) < _rank_sql(incoming.status)
    # The dispatched outcome is the worker's own word on which message a request became: a row only receipts
    # made (no dispatched_at yet) that names another message was made by a receipt for someone else's message,
    # and is taken over whole, as if that receipt had never come.
    takes_over = and_(
        incoming.dispatched_at.is_not(None),
        stored.dispatched_at.is_(None),
        stored.provider_message_id.is_not(None),
        incoming.provider_message_id.is_not(None),
        stored.provider_message_id != incoming.provider_message_id,
    )
    merged: dict[str, ColumnElement[Any]] = {
        "status": case((takes_over, incoming.status), (advances, incoming.status), else_=stored.status),
        "updated_at": case((stored.updated_at < incoming.updated_at, incoming.updated_at), else_=stored.updated_at),
    }
    for name in _FILL_COLUMNS:
        merged[name] = case((takes_over, incoming[name]), else_=func.coalesce(incoming[name], stored[name]))
    for name in _STATUS_BOUND_COLUMNS:
        merged[name] = case(
            (takes_over, incoming[name]), (advances, incoming[name]), else_=func.coalesce(stored[name], incoming[name])
        )
    # A row that already knows its message is left alone by an outcome naming another one. Comparing only
    # when both are set keeps receipts that overtook sms.dispatched, and SmsFailed (no SID), applying.
    same_message = or_(
        stored.provider_message_id.is_(None),
        incoming.provider_message_id.is_(None),
        stored.provider_message_id == incoming.provider_message_id,
    )
    return insert.on_conflict_do_update(
        index_elements=[stored.tenant_id, stored.request_id], set_=merged, where=or_(same_message, takes_over)
    )


@functools.cache
def park_statement(dialect_name: str) -> Insert:
    """Park a SID-only receipt; the same receipt twice (Twilio retries callbacks) is kept once.

    The key includes the tenant, so a receipt another tenant parked for the same SID and status is a
    separate entry and cannot make this one look like a duplicate.
    """
    return _insert(dialect_name, pending_receipts).on_conflict_do_nothing()


@functools.cache
def receipt_update_statement() -> Update:
    """Apply one parked receipt to its tenant's row(s) carrying its SID, with the same rank rules as the upsert.

    Matching the tenant as well as the SID is what stops a receipt another tenant signed from reaching a row.
    """
    stored = dispatch_log.c
    code = bindparam("receipt_provider_code", type_=Integer())
    received = bindparam("receipt_received_at", type_=UtcDateTime())
    advances = _rank_sql(stored.status) < bindparam("receipt_rank", type_=Integer())
    return (
        update(dispatch_log)
        .where(
            stored.provider_message_id == bindparam("receipt_sid", type_=String()),
            stored.tenant_id == bindparam("receipt_tenant_id", type_=String()),
        )
        .values(
            status=case((advances, bindparam("receipt_status", type_=String())), else_=stored.status),
            provider_code=case((advances, code), else_=func.coalesce(stored.provider_code, code)),
            updated_at=case((stored.updated_at < received, received), else_=stored.updated_at),
        )
    )
