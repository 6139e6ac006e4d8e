"""Whatever a producer puts on ``sms.requested``, each record gets exactly one outcome valid against its schema.

Property-based: arbitrary bytes, arbitrary JSON, requests with arbitrary metadata and field values, and values
of several MB. Each record goes through the real dispatcher and pipeline (fakes only for Kafka and Twilio);
the outcome is checked against the JSON Schema published in ``schemas/``, as a consumer in another language
would check it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from smsdispatch.contract import topics

from .fakes import TO, harness, inbound

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
VALIDATORS = {
    topic: Draft202012Validator(json.loads((SCHEMAS / f"{topic}.schema.json").read_text()))
    for topic in (topics.DISPATCHED, topics.FAILED)
}
# Lone surrogates too: JSON can carry them escaped ("\ud800"), and no UTF-8 encoder accepts them.
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(ANY_TEXT, children, max_size=5),
    max_leaves=20,
)
HUGE = st.integers(min_value=1_000_000, max_value=4_000_000).map(lambda size: "x" * size)


@st.composite
def requests_with_anything_in_them(draw: st.DrawFn) -> dict[str, Any]:
    """A request whose fields may each be valid, hostile or huge; keyed correctly so it is handled here."""
    document: dict[str, Any] = {
        "request_id": draw(st.sampled_from(["r-1", "", "r\x00nul"]) | ANY_TEXT),
        "tenant_id": "acme",
        "to": draw(st.just(TO) | ANY_TEXT),
        "body": draw(st.just("Hello") | ANY_TEXT | HUGE),
        "metadata": draw(
            st.dictionaries(ANY_TEXT, ANY_TEXT | HUGE, max_size=4) | JSON_VALUES | st.just({"k": "v\x00"})
        ),
    }
    extra = draw(st.dictionaries(st.sampled_from(["requested_at", "resend_of", "unknown"]), JSON_VALUES, max_size=2))
    return {**document, **extra}


RECORDS = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    requests_with_anything_in_them().map(lambda document: json.dumps(document).encode()),
    requests_with_anything_in_them().map(
        lambda document: json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ),
)


def answer(value: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Run one record through a fresh dispatcher; return each outcome as (topic, JSON)."""
    h = harness()

    async def run() -> None:
        await h.run([inbound(value, key=b"acme")])

    asyncio.run(run())
    return [(emitted.topic, json.loads(emitted.value)) for emitted in h.publisher.outcomes()]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(RECORDS)
def test_every_record_gets_exactly_one_outcome_that_validates_against_its_published_schema(value: bytes) -> None:
    outcomes = answer(value)

    assert len(outcomes) == 1, f"{len(outcomes)} outcomes for one record"
    [(topic, document)] = outcomes
    VALIDATORS[topic].validate(document)
    encoded = json.dumps(document).encode()
    assert len(encoded) < 64 * 1024, "an outcome never echoes a record's bulk"


def test_a_record_of_several_megabytes_fails_with_a_4_kib_excerpt_and_says_why() -> None:
    value = json.dumps({"request_id": "r-big", "tenant_id": "acme", "to": TO, "body": "x" * 3_000_000}).encode()

    [(topic, document)] = answer(value)

    assert topic == topics.FAILED
    assert document["error"]["code"] == "invalid_request"
    assert document["request_id"] == "r-big"
    assert len(document["raw"].encode()) <= 4096
    assert "body" in document["error"]["message"]
