"""JSON Schemas (draft 2020-12) of every topic value, for producers and consumers in other languages.

Pure: builds dicts and text, writes nothing (``smsdispatch schemas`` does the writing). The generated files
are committed in the top-level ``schemas/`` folder; a test fails when they fall behind the models.

Inputs (``sms.requested``) are described in pydantic's *validation* mode: what we accept. Outputs are
described in *serialization* mode with every property required, because what we publish always carries
every field (absent values are written as null, empty metadata as ``{}``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import core_schema

from smsdispatch.contract.messages import SmsDispatched, SmsFailed, SmsRequested, SmsStatus
from smsdispatch.contract.suppressions import SuppressionRecord
from smsdispatch.contract.tenants import TenantRecord

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:smsdispatch:schema:"

Direction = Literal["input", "output"]

# topic -> (model, who writes it, what the topic carries). The order is docs/contract.md's.
VALUES: dict[str, tuple[type[BaseModel], Direction, str]] = {
    "sms.requested": (
        SmsRequested,
        "input",
        "Value of the sms.requested topic, keyed by tenant_id: what producers publish to have one SMS sent. "
        "Unknown fields are ignored; types are strict (a number is not accepted where a string is expected).",
    ),
    "sms.dispatched": (
        SmsDispatched,
        "output",
        "Value of the sms.dispatched topic, keyed by tenant_id: Twilio accepted the message.",
    ),
    "sms.failed": (
        SmsFailed,
        "output",
        "Value of the sms.failed topic, keyed by tenant_id (empty when unknown): the request ended without "
        "an SMS being accepted, or acceptance could not be confirmed (error.code outcome_unknown).",
    ),
    "sms.status": (
        SmsStatus,
        "output",
        "Value of the sms.status topic, keyed by tenant_id: a delivery receipt from Twilio.",
    ),
    "sms.tenants": (
        TenantRecord,
        "output",
        "Value of the compacted sms.tenants topic, keyed by tenant_id (a null value removes the tenant). "
        "config is an encrypted envelope, never plaintext credentials.",
    ),
    "sms.suppressions": (
        SuppressionRecord,
        "output",
        'Value of the compacted sms.suppressions topic, keyed by "{tenant_id}/{number}": the number opted out '
        "of the tenant's messages, which fail recipient_opted_out without being sent. A null value opts it "
        "back in. The key alone decides; workers honour any non-null value.",
    ),
}

# docs/contract.md's words for the fields producers fill in; the models carry the rules, these carry the meaning.
_REQUEST_FIELD_MEANINGS = {
    "request_id": "Idempotency key, unique per tenant: the same request_id is never sent twice.",
    "tenant_id": "The tenant whose Twilio account sends the message; also the record's key.",
    "body": "The message text, 1 to 1600 characters.",
    "requested_at": "RFC 3339 timestamp; defaults to the record's timestamp.",
    "metadata": "String-to-string pairs, echoed on every outcome.",
    "resend_of": "The request_id this request re-sends (set by `smsdispatch replay`).",
}
_REQUEST_EXAMPLE = {
    "request_id": "order-1234-confirmation",
    "tenant_id": "acme",
    "to": "+14155552671",
    "body": "Your order 1234 has shipped.",
    "requested_at": "2024-05-01T12:00:00Z",
    "metadata": {"order_id": "1234"},
}


class _WireJsonSchema(GenerateJsonSchema):
    """Marks every field required in serialization mode: our outputs always write every field."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        return self.mode == "serialization" or super().field_is_required(field, total)


def schema_file_name(topic: str) -> str:
    return f"{topic}.schema.json"


def build_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of one topic's value."""
    model, direction, description = VALUES[topic]
    mode: JsonSchemaMode = "validation" if direction == "input" else "serialization"
    schema = model.model_json_schema(mode=mode, schema_generator=_WireJsonSchema)
    header = {
        "$schema": DIALECT,
        "$id": f"{ID_PREFIX}{topic}",
        "title": model.__name__,
        "description": description,
    }
    if model is SmsRequested:
        for name, meaning in _REQUEST_FIELD_MEANINGS.items():
            schema["properties"][name].setdefault("description", meaning)
        schema["examples"] = [_REQUEST_EXAMPLE]
    return {**schema, **header}


def json_schemas() -> dict[str, dict[str, Any]]:
    """``{file name: schema}`` for every topic value of docs/contract.md."""
    return {schema_file_name(topic): build_schema(topic) for topic in VALUES}


def render(schema: dict[str, Any]) -> str:
    """The file text: sorted keys and two-space indent, so regenerating changes nothing; ends in a newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
