"""The dispatch log: where every outcome of every request ends up, one row per (tenant_id, request_id).

request_id is unique per tenant only, so the tenant is part of every row's key, and an outcome or receipt
only ever changes rows of its own tenant, whose SID (once known) is the one it names: a status callback
that tenant B signed naming tenant A's request_id and SID cannot touch A's row (see ``upserts.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Row, Select, delete, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from smsdispatch.adapters.storage.engine import create_engine, parse_database_url
from smsdispatch.adapters.storage.errors import StorageError, classify, is_database_error
from smsdispatch.adapters.storage.migrations import migrate
from smsdispatch.adapters.storage.rows import LoggedOutcome
from smsdispatch.adapters.storage.tables import dispatch_log, pending_receipts
from smsdispatch.adapters.storage.upserts import apply_batch, drain_parked_receipts, lock_tenants
from smsdispatch.contract import SmsDispatched, SmsFailed, SmsStatus

_MAX_RECENT = 10_000


@dataclass(frozen=True, slots=True)
class DispatchLogRow:
    """One row of ``notification_dispatch_log``: what is known about one request of one tenant.

    ``(tenant_id, request_id)`` is the row's key; tenant_id is "" for an outcome that named no tenant.
    """

    request_id: str
    tenant_id: str
    provider: str | None
    provider_message_id: str | None
    to_number: str | None
    status: str
    error_code: str | None
    provider_code: int | None
    segments: int | None
    attempts: int | None
    resend_of: str | None
    requested_at: datetime | None
    updated_at: datetime
    error_message: str | None
    encoding: str | None
    dispatched_at: datetime | None
    metadata: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class DispatchLogSummary:
    """Counts over the log: rows by status, failed rows by error code, receipts still waiting for a row."""

    total: int
    by_status: Mapping[str, int]
    by_error_code: Mapping[str, int]
    pending_receipts: int


_ROW_COLUMNS = [dispatch_log.c[field.name] for field in fields(DispatchLogRow)]


def _to_row(row: Row[Any]) -> DispatchLogRow:
    return DispatchLogRow(**row._asdict())


class DispatchLog:
    """The ``notification_dispatch_log`` table behind a small async API.

    Open with ``await DispatchLog.open(url)`` (creates or migrates the schema), write outcomes with
    :meth:`record`, and ``await log.close()`` (or use ``async with``). Every failure is a
    :class:`~smsdispatch.adapters.storage.StorageError` whose ``retryable`` says whether to try again later.
    """

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self._engine = engine
        self._url = url

    @classmethod
    async def open(cls, url: str | URL) -> DispatchLog:
        """Connect to ``url`` (``sqlite+aiosqlite:///file.db``, ``postgresql+asyncpg://…``) and migrate it."""
        parsed = parse_database_url(url)
        engine = create_engine(parsed)
        try:
            with _storage_errors("creating or migrating the dispatch-log schema"):
                await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, parsed)

    @property
    def url(self) -> str:
        """The database URL with any password masked, safe to log."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def __repr__(self) -> str:
        return f"DispatchLog({self.url!r})"

    async def record(self, outcomes: Sequence[SmsDispatched | SmsFailed | SmsStatus]) -> None:
        """Write a batch of outcomes in one transaction: all of them are committed, or none is.

        Safe to call again with the same batch after a failure (replays are idempotent). Raises
        :class:`StorageUnavailable` when the database is unreachable (retry later) and :class:`StorageError`
        otherwise.
        """
        batch: list[LoggedOutcome] = list(outcomes)
        for outcome in batch:
            if not isinstance(outcome, SmsDispatched | SmsFailed | SmsStatus):
                raise TypeError(f"cannot record a {type(outcome).__name__} in the dispatch log")
        if not batch:
            return
        with _storage_errors(f"recording {len(batch)} outcome(s)"):
            async with self._engine.begin() as connection:
                await apply_batch(connection, batch)

    async def apply_pending_receipts(self) -> int:
        """Apply every parked receipt whose tenant now has a row with its SID; return how many were applied.

        :meth:`record` already does this for the SIDs of each batch, under the tenant's lock; this sweep is
        the backstop for anything a writer left behind (such as receipts parked before an upgrade). A
        receipt applies only to a row of its own tenant carrying its SID; one naming another tenant's SID
        stays parked until :meth:`purge_pending_receipts`. One transaction per tenant, under its lock.
        """
        tenants = select(pending_receipts.c.tenant_id).distinct()
        applied = 0
        with _storage_errors("applying pending receipts"):
            async with self._engine.connect() as connection:
                tenant_ids = list((await connection.execute(tenants)).scalars())
            for tenant_id in tenant_ids:
                async with self._engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        await lock_tenants(connection, {tenant_id})
                    applied += await drain_parked_receipts(connection, tenant_id=tenant_id)
        return applied

    async def purge_pending_receipts(self, received_before: datetime) -> int:
        """Forget parked receipts received before ``received_before`` (SIDs that will never get a row,
        such as messages another system sent from the same Twilio account); return how many."""
        if received_before.tzinfo is None:
            raise ValueError("received_before must be timezone-aware")
        statement = delete(pending_receipts).where(pending_receipts.c.received_at < received_before)
        with _storage_errors("purging pending receipts"):
            async with self._engine.begin() as connection:
                return (await connection.execute(statement)).rowcount

    async def get(self, request_id: str, tenant_id: str | None = None) -> DispatchLogRow | None:
        """The row for ``request_id`` of ``tenant_id``, or None if nothing about it has been recorded.

        Without a tenant, any tenant's row for that request_id: the most recently updated one. request_id is
        unique per tenant only, so pass the tenant whenever it is known.
        """
        query = select(*_ROW_COLUMNS).where(dispatch_log.c.request_id == request_id)
        return await self._first(query, tenant_id)

    async def find_by_provider_message_id(
        self, provider_message_id: str, tenant_id: str | None = None
    ) -> DispatchLogRow | None:
        """The row of ``tenant_id`` whose Twilio SID is ``provider_message_id``, or None.

        Without a tenant, any tenant's row with that SID: the most recently updated one. Another tenant can
        create a row naming someone else's SID (a receipt it signed itself), so pass the tenant when known.
        """
        query = select(*_ROW_COLUMNS).where(dispatch_log.c.provider_message_id == provider_message_id)
        return await self._first(query, tenant_id)

    async def _first(self, query: Select[Any], tenant_id: str | None) -> DispatchLogRow | None:
        if tenant_id is not None:
            query = query.where(dispatch_log.c.tenant_id == tenant_id)
        # Newest first; the tenant breaks ties so the same database always gives the same answer.
        query = query.order_by(dispatch_log.c.updated_at.desc(), dispatch_log.c.tenant_id).limit(1)
        with _storage_errors("reading the dispatch log"):
            async with self._engine.connect() as connection:
                row = (await connection.execute(query)).first()
        return None if row is None else _to_row(row)

    async def recent(self, limit: int = 20, *, tenant_id: str | None = None) -> list[DispatchLogRow]:
        """The ``limit`` most recently updated rows, newest first, optionally for one tenant."""
        if not 1 <= limit <= _MAX_RECENT:
            raise ValueError(f"limit must be between 1 and {_MAX_RECENT}, got {limit}")
        query = select(*_ROW_COLUMNS)
        if tenant_id is not None:
            query = query.where(dispatch_log.c.tenant_id == tenant_id)
        query = query.order_by(
            dispatch_log.c.updated_at.desc(), dispatch_log.c.request_id, dispatch_log.c.tenant_id
        ).limit(limit)
        with _storage_errors("reading the dispatch log"):
            async with self._engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        return [_to_row(row) for row in rows]

    async def summary(self, *, tenant_id: str | None = None) -> DispatchLogSummary:
        """Row counts by status and by error code (all tenants, or one)."""
        count = func.count().label("count")
        by_status = select(dispatch_log.c.status, count).group_by(dispatch_log.c.status)
        by_error = (
            select(dispatch_log.c.error_code, count)
            .where(dispatch_log.c.error_code.is_not(None))
            .group_by(dispatch_log.c.error_code)
        )
        pending = select(func.count()).select_from(pending_receipts)
        if tenant_id is not None:
            by_status = by_status.where(dispatch_log.c.tenant_id == tenant_id)
            by_error = by_error.where(dispatch_log.c.tenant_id == tenant_id)
            pending = pending.where(pending_receipts.c.tenant_id == tenant_id)
        with _storage_errors("summarising the dispatch log"):
            async with self._engine.connect() as connection:
                statuses: dict[str, int] = dict((await connection.execute(by_status)).all())
                errors: dict[str, int] = dict((await connection.execute(by_error)).all())
                waiting = (await connection.execute(pending)).scalar_one()
        return DispatchLogSummary(
            total=sum(statuses.values()),
            by_status=dict(sorted(statuses.items())),
            by_error_code=dict(sorted(errors.items())),
            pending_receipts=waiting,
        )

    async def close(self) -> None:
        """Close every pooled connection. The log cannot be used afterwards."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Re-raise database failures as StorageError / StorageUnavailable, keeping the cause chained."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        if not is_database_error(error):
            raise  # a bug of ours stays a bug, with its own type and traceback
        raise classify(error, action) from error
