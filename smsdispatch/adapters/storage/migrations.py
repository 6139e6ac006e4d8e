"""Schema migrations: an ordered list of steps, applied automatically when a DispatchLog opens.

Why not Alembic? Alembic wants a script directory with ``env.py`` and a ``versions/`` folder on disk, loaded
by path, plus its own async bootstrapping, for what is here one table and one side table. This file does the
three things we need from it in under a hundred lines (plus the steps themselves), with no extra dependency
and nothing to configure:

1. ``smsdispatch_schema_version`` records which steps ran (one row per version, with when and what).
2. :data:`MIGRATIONS` is the ordered list of steps. Each step is a plain function given a SQLAlchemy
   ``Connection``; all pending steps and their version rows run in ONE transaction, so a failed step leaves
   the database exactly as it was (both PostgreSQL and SQLite have transactional DDL).
3. Concurrent openers are serialised: on PostgreSQL by a transaction-scoped advisory lock taken before
   anything is read, on SQLite by ``BEGIN IMMEDIATE`` (see ``engine.py``), which takes the write lock up
   front. The second process waits, then finds the work done. Opening twice is a no-op.

How to add a step: append ``Migration(N + 1, "what it does", function)``; never edit or reorder a step that
has shipped. Steps define their own table snapshots (or plain ``ALTER TABLE`` SQL) instead of importing
``tables.py``, because a step must keep doing what it did when it shipped even after ``tables.py`` moves on.
Then mirror the change in ``tables.py``; ``tests/adapters/storage`` checks the two agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    column,
    func,
    insert,
    literal,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from smsdispatch.adapters.storage.errors import SchemaTooNew

logger = logging.getLogger(__name__)

# Any fixed 64-bit number works, as long as every smsdispatch process uses the same one.
_ADVISORY_LOCK_KEY = 0x736D_7364_6973_7031  # "smsdisp1"

_version_metadata = MetaData()
schema_version = Table(
    "smsdispatch_schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One step: ``apply`` runs inside the migration transaction and must not commit."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_dispatch_log_v1(connection: Connection) -> None:
    """Version 1: the docs/contract.md dispatch log plus its extension columns, and the pending-receipt table."""
    snapshot = MetaData()
    Table(
        "notification_dispatch_log",
        snapshot,
        Column("request_id", String, primary_key=True),
        Column("tenant_id", String),
        Column("provider", String),
        Column("provider_message_id", String),
        Column("to_number", String),
        Column("status", String, nullable=False),
        Column("error_code", String),
        Column("provider_code", Integer),
        Column("segments", Integer),
        Column("attempts", Integer),
        Column("resend_of", String),
        Column("requested_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("error_message", Text),
        Column("encoding", String),
        Column("dispatched_at", DateTime(timezone=True)),
        Column("metadata", JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")),
        Index("ix_notification_dispatch_log_provider_message_id", "provider_message_id"),
        Index("ix_notification_dispatch_log_tenant_updated", "tenant_id", "updated_at"),
    )
    Table(
        "notification_dispatch_pending_receipt",
        snapshot,
        Column("provider_message_id", String, primary_key=True),
        Column("status", String, primary_key=True),
        Column("tenant_id", String),
        Column("provider_code", Integer),
        Column("received_at", DateTime(timezone=True), nullable=False),
    )
    snapshot.create_all(connection)


# Version 2 in PostgreSQL, in place. The constraint names are PostgreSQL's defaults, which is what version 1
# (created without names) got. Setting the NULL tenants to "" first is what lets SET NOT NULL succeed; the old
# keys are subsets of the new ones, so no two existing rows can collide under the new key.
_KEY_BY_TENANT_POSTGRESQL = (
    "UPDATE notification_dispatch_log SET tenant_id = '' WHERE tenant_id IS NULL",
    "ALTER TABLE notification_dispatch_log ALTER COLUMN tenant_id SET NOT NULL",
    "ALTER TABLE notification_dispatch_log DROP CONSTRAINT notification_dispatch_log_pkey",
    "ALTER TABLE notification_dispatch_log "
    "ADD CONSTRAINT notification_dispatch_log_pkey PRIMARY KEY (tenant_id, request_id)",
    "UPDATE notification_dispatch_pending_receipt SET tenant_id = '' WHERE tenant_id IS NULL",
    "ALTER TABLE notification_dispatch_pending_receipt ALTER COLUMN tenant_id SET NOT NULL",
    "ALTER TABLE notification_dispatch_pending_receipt DROP CONSTRAINT notification_dispatch_pending_receipt_pkey",
    "ALTER TABLE notification_dispatch_pending_receipt ADD CONSTRAINT notification_dispatch_pending_receipt_pkey "
    "PRIMARY KEY (tenant_id, provider_message_id, status)",
)


def _dispatch_log_v2(snapshot: MetaData, name: str) -> Table:
    """The dispatch log as of version 2 under table name ``name``: version 1's columns, in the same order and
    with the same types, with tenant_id NOT NULL and the key (tenant_id, request_id)."""
    return Table(
        name,
        snapshot,
        Column("request_id", String, nullable=False),
        Column("tenant_id", String, nullable=False),
        Column("provider", String),
        Column("provider_message_id", String),
        Column("to_number", String),
        Column("status", String, nullable=False),
        Column("error_code", String),
        Column("provider_code", Integer),
        Column("segments", Integer),
        Column("attempts", Integer),
        Column("resend_of", String),
        Column("requested_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("error_message", Text),
        Column("encoding", String),
        Column("dispatched_at", DateTime(timezone=True)),
        Column("metadata", JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")),
        PrimaryKeyConstraint("tenant_id", "request_id", name="notification_dispatch_log_pkey"),
    )


def _pending_receipt_v2(snapshot: MetaData, name: str) -> Table:
    """The parked receipts as of version 2 under table name ``name``: key (tenant_id, SID, status)."""
    return Table(
        name,
        snapshot,
        Column("provider_message_id", String, nullable=False),
        Column("status", String, nullable=False),
        Column("tenant_id", String, nullable=False),
        Column("provider_code", Integer),
        Column("received_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint(
            "tenant_id", "provider_message_id", "status", name="notification_dispatch_pending_receipt_pkey"
        ),
    )


def _key_by_tenant_v2(connection: Connection) -> None:
    """Version 2: key both tables by tenant, so one tenant's outcomes and receipts can never touch another's.

    Tenant B could sign a status callback naming tenant A's request_id and SID, and the upsert on request_id
    alone rewrote A's row. Now the log is keyed by (tenant_id, request_id) and the parked receipts by
    (tenant_id, provider_message_id, status); tenant_id becomes NOT NULL, "" where it was NULL (what
    ``rows.NO_TENANT`` writes from now on). Every row is kept.
    """
    if connection.dialect.name == "postgresql":
        for statement in _KEY_BY_TENANT_POSTGRESQL:
            connection.execute(text(statement))
        return
    # SQLite cannot change a primary key: build each table anew, copy, drop the old one, rename the new one.
    _rebuild_sqlite(connection, _dispatch_log_v2, "notification_dispatch_log")
    _rebuild_sqlite(connection, _pending_receipt_v2, "notification_dispatch_pending_receipt")
    # The indexes went with the old table; same names and columns as version 1.
    log = _dispatch_log_v2(MetaData(), "notification_dispatch_log")
    Index("ix_notification_dispatch_log_provider_message_id", log.c.provider_message_id).create(connection)
    Index("ix_notification_dispatch_log_tenant_updated", log.c.tenant_id, log.c.updated_at).create(connection)


def _rebuild_sqlite(connection: Connection, define: Callable[[MetaData, str], Table], name: str) -> None:
    rebuilt = define(MetaData(), f"{name}_v2_rebuild")
    rebuilt.create(connection)
    names = [target.name for target in rebuilt.columns]
    old = table(name, *(column(each) for each in names))
    copied = [func.coalesce(old.c.tenant_id, literal("")) if each == "tenant_id" else old.c[each] for each in names]
    connection.execute(insert(rebuilt).from_select(names, select(*copied)))
    # Quoted constant names of ours, not input.
    connection.execute(text(f'DROP TABLE "{name}"'))
    connection.execute(text(f'ALTER TABLE "{rebuilt.name}" RENAME TO "{name}"'))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create notification_dispatch_log and notification_dispatch_pending_receipt",
        _create_dispatch_log_v1,
    ),
    Migration(
        2,
        "key notification_dispatch_log by (tenant_id, request_id) and pending receipts by tenant too",
        _key_by_tenant_v2,
    ),
)


async def migrate(engine: AsyncEngine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database up to the last step of ``migrations``; return the schema version it is now at."""
    _check_ordered(migrations)
    async with engine.begin() as connection:
        return await connection.run_sync(_migrate, migrations)


def _migrate(connection: Connection, migrations: Sequence[Migration]) -> int:
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends, so a second process blocks here until our steps are committed.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    schema_version.create(connection, checkfirst=True)
    current = connection.execute(select(func.max(schema_version.c.version))).scalar_one_or_none() or 0
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise SchemaTooNew(
            f"The database schema is at version {current} but this smsdispatch knows only up to {latest}; "
            "upgrade smsdispatch (the database was migrated by a newer release)."
        )
    for step in migrations:
        if step.version <= current:
            continue
        logger.info("Migrating database schema to version %d: %s", step.version, step.description)
        step.apply(connection)
        connection.execute(
            insert(schema_version).values(
                version=step.version, description=step.description, applied_at=datetime.now(UTC)
            )
        )
    return max(current, latest)


def _check_ordered(migrations: Sequence[Migration]) -> None:
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... with no gaps; got {versions}")
