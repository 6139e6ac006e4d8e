"""The upsert's SQL, compiled: what each row binds. (Its rules are proven on both databases in test_dispatch_log.)"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from smsdispatch.adapters.storage.rows import STATUS_RANK
from smsdispatch.adapters.storage.tables import dispatch_log
from smsdispatch.adapters.storage.upserts import receipt_update_statement, upsert_statement


@pytest.mark.parametrize(("name", "dialect"), [("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())])
def test_each_upserted_row_binds_its_own_columns_only_with_the_status_ranks_written_into_the_sql(
    name: str, dialect: Dialect
) -> None:
    compiled = upsert_statement(name).compile(dialect=dialect)
    # The ranks were bind parameters once: 152 more per row, each processed again for every row of a batch.
    assert sorted(compiled.binds) == sorted(column.name for column in dispatch_log.columns)
    for status, rank in STATUS_RANK.items():
        assert f"WHEN '{status}' THEN {rank}" in str(compiled)


def test_a_parked_receipt_update_binds_only_the_receipts_values() -> None:
    compiled = receipt_update_statement().compile(dialect=sqlite.dialect())
    assert sorted(compiled.binds) == [
        "receipt_provider_code",
        "receipt_rank",
        "receipt_received_at",
        "receipt_sid",
        "receipt_status",
        "receipt_tenant_id",
    ]
