"""SuppressionRecord, its key, and the (key, value) change to publish on sms.suppressions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from smsdispatch.contract import (
    SuppressionRecord,
    SuppressionSource,
    parse_suppression_key,
    suppression_change,
    suppression_key,
)

NUMBER = "+14155552671"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_key_is_the_readable_tenant_slash_number_and_parses_back() -> None:
    key = suppression_key("Acme_Corp-2.eu", NUMBER)

    assert key == b"Acme_Corp-2.eu/+14155552671"
    assert parse_suppression_key(key) == ("Acme_Corp-2.eu", NUMBER)


@pytest.mark.parametrize(
    "key",
    [
        None,
        b"",
        b"acme",
        b"/+14155552671",
        b"acme/",
        b"acme/14155552671",
        b"acme/+0123",
        b"a/b/+14155552671",
        b"acme/+14155552671\n",
        b"\xff\xfe/+14155552671",
        ("x" * 65 + "/+14155552671").encode(),
    ],
)
def test_a_key_this_module_never_writes_does_not_parse(key: bytes | None) -> None:
    assert parse_suppression_key(key) is None


def test_an_opt_out_is_the_record_as_json_under_its_key() -> None:
    key, value = suppression_change("acme", NUMBER, True, SuppressionSource.PROVIDER_21610, at=AT)

    assert key == b"acme/+14155552671"
    assert value is not None
    assert json.loads(value) == {
        "tenant_id": "acme",
        "number": NUMBER,
        "source": "provider_21610",
        "at": "2026-12-01T12:00:00Z",
    }


def test_an_opt_in_is_a_tombstone_under_the_same_key() -> None:
    assert suppression_change("acme", NUMBER, False) == (b"acme/+14155552671", None)


@pytest.mark.parametrize("opted_out", [True, False])
@pytest.mark.parametrize(
    ("tenant_id", "number"), [("acme/eu", NUMBER), ("", NUMBER), ("acme", "14155552671"), ("acme", "+1415")]
)
def test_a_change_for_ids_no_record_could_have_is_refused_either_way(
    tenant_id: str, number: str, opted_out: bool
) -> None:
    with pytest.raises(ValidationError):
        suppression_change(tenant_id, number, opted_out)


def test_the_record_reads_strictly_ignores_unknown_fields_and_is_frozen() -> None:
    record = SuppressionRecord.model_validate_json(
        b'{"tenant_id": "acme", "number": "+14155552671", "source": "inbound_stop", "at": "2026-12-01T12:00:00Z",'
        b' "note": "added later"}'
    )

    assert (record.source, record.at) == (SuppressionSource.INBOUND_STOP, AT)
    with pytest.raises(ValidationError):
        record.source = SuppressionSource.OPERATOR  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SuppressionRecord.model_validate_json(b'{"tenant_id": "acme", "number": 14155552671, "source": "operator"}')
    with pytest.raises(ValidationError):
        SuppressionRecord.model_validate_json(b'{"tenant_id": "acme", "number": "+14155552671", "source": "stop"}')


def test_the_sources_are_the_three_the_contract_names() -> None:
    assert {source.value for source in SuppressionSource} == {"provider_21610", "inbound_stop", "operator"}
