"""Publishing and listing opt-outs on sms.suppressions against the real broker, one fresh tenant per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from smsdispatch.client import Suppression, current_suppressions, publish_suppression
from smsdispatch.contract import SuppressionSource, suppression_key, topics
from smsdispatch.tools.testing.kafka import free_ports
from tests.client.conftest import Produce

pytestmark = pytest.mark.asyncio

NUMBER = "+14155552671"
OTHER = "+442079460958"


async def test_an_opt_out_is_listed_with_its_source_and_time_and_a_tombstone_removes_it(
    broker: str, tenant: str
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await publish_suppression(broker, tenant, NUMBER, True, SuppressionSource.INBOUND_STOP)
    listed = await current_suppressions(broker, tenant)
    await publish_suppression(broker, tenant, NUMBER, False)

    assert [(entry.tenant_id, entry.number, entry.source) for entry in listed] == [
        (tenant, NUMBER, SuppressionSource.INBOUND_STOP)
    ]
    assert listed[0].since >= before
    assert await current_suppressions(broker, tenant) == []


async def test_listing_one_tenant_leaves_out_tenants_whose_id_starts_the_same(broker: str, tenant: str) -> None:
    await publish_suppression(broker, tenant, NUMBER, True)
    await publish_suppression(broker, f"{tenant}.eu", OTHER, True)

    mine = await current_suppressions(broker, tenant)
    everyone = await current_suppressions(broker)

    assert [entry.number for entry in mine] == [NUMBER]
    assert {(entry.tenant_id, entry.number) for entry in everyone} >= {(tenant, NUMBER), (f"{tenant}.eu", OTHER)}
    assert everyone == sorted(everyone, key=lambda entry: (entry.tenant_id, entry.number))


async def test_a_record_whose_value_cannot_be_read_is_listed_since_workers_honour_it(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    key = suppression_key(tenant, NUMBER).decode()
    await publish_records([(topics.SUPPRESSIONS, key, b"not json", 1_700_000_000_000)])

    listed = await current_suppressions(broker, tenant)

    assert listed == [Suppression(tenant, NUMBER, None, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))]


async def test_an_invalid_number_is_refused_before_kafka_is_contacted() -> None:
    (closed_port,) = free_ports(1)

    with pytest.raises(ValidationError):
        await publish_suppression(f"kafka://127.0.0.1:{closed_port}", "acme", "14155552671", True)
