"""The dispatch log (docs/contract.md, "The dispatch log"): outcomes upserted into SQLite or PostgreSQL.

    log = await DispatchLog.open("sqlite+aiosqlite:///smsdispatch.db")
    await log.record([dispatched, failed, receipt])   # one transaction
    row = await log.get("req-1", tenant_id="acme")   # rows are keyed by (tenant_id, request_id)
    await log.close()

The upsert rules are described in ``upserts.py`` (ranks and row keys in ``rows.py``), the schema
migrations in ``migrations.py``.
"""

from smsdispatch.adapters.storage.dispatch_log import DispatchLog, DispatchLogRow, DispatchLogSummary
from smsdispatch.adapters.storage.errors import SchemaTooNew, StorageError, StorageUnavailable
from smsdispatch.adapters.storage.migrations import MIGRATIONS, Migration
from smsdispatch.adapters.storage.rows import FINAL_STATUSES, NO_TENANT, status_rank, unreadable_request_id

__all__ = [
    "FINAL_STATUSES",
    "MIGRATIONS",
    "NO_TENANT",
    "DispatchLog",
    "DispatchLogRow",
    "DispatchLogSummary",
    "Migration",
    "SchemaTooNew",
    "StorageError",
    "StorageUnavailable",
    "status_rank",
    "unreadable_request_id",
]
