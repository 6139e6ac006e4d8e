"""The tables as the code reads and writes them today (SQLAlchemy Core, no ORM).

These definitions are what queries are built from; they do not create anything. The database is created and
changed only by the ordered steps in ``migrations.py``, and a test checks that a freshly migrated database
has exactly these columns, so the two cannot drift apart unnoticed. To add a column: add a migration step,
then add the column here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    PostgreSQL keeps ``timestamptz`` natively. SQLite has no timestamp type: SQLAlchemy writes the
    wall-clock fields as text and drops the offset, so a value must be converted to UTC before it is written
    (or ``+02:00`` times would be stored two hours off) and marked UTC when read. Storing one fixed zone also
    keeps the text form sortable, which the ``updated_at`` comparison in the upsert relies on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_column_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is SQL NULL so COALESCE can skip it."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


metadata = MetaData()

dispatch_log = Table(
    "notification_dispatch_log",
    metadata,
    # The columns of docs/contract.md, in its order. Never rename, reorder or drop one of these.
    Column("request_id", String, nullable=False),
    Column("tenant_id", String, nullable=False),  # rows.NO_TENANT ("") when the outcome names no tenant
    Column("provider", String),
    Column("provider_message_id", String),
    Column("to_number", String),
    Column("status", String, nullable=False),
    Column("error_code", String),
    Column("provider_code", Integer),
    Column("segments", Integer),
    Column("attempts", Integer),
    Column("resend_of", String),
    Column("requested_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    # Extensions (allowed by docs/contract.md): what an operator asks next when looking at a row.
    Column("error_message", Text),
    Column("encoding", String),
    Column("dispatched_at", UtcDateTime),
    Column("metadata", json_column_type()),
    # Receipts from the status callback may carry only the Twilio SID.
    Index("ix_notification_dispatch_log_provider_message_id", "provider_message_id"),
    # "What happened to tenant T lately": recent() and operator queries.
    Index("ix_notification_dispatch_log_tenant_updated", "tenant_id", "updated_at"),
    # request_id is unique per tenant only, and a tenant's outcomes must never reach another tenant's row
    # (migration 2). The name is PostgreSQL's default for a table's primary key.
    PrimaryKeyConstraint("tenant_id", "request_id", name="notification_dispatch_log_pkey"),
)

pending_receipts = Table(
    "notification_dispatch_pending_receipt",
    metadata,
    # A receipt that names only a SID we have no row for yet (it overtook its sms.dispatched outcome).
    # Keyed by (tenant, SID, status) so a receipt delivered twice is kept once, while one that another tenant
    # signed naming the same SID is a separate entry: it can neither take the real receipt's place nor
    # ever apply to another tenant's row.
    Column("provider_message_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("tenant_id", String, nullable=False),
    Column("provider_code", Integer),
    Column("received_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint(
        "tenant_id", "provider_message_id", "status", name="notification_dispatch_pending_receipt_pkey"
    ),
)
