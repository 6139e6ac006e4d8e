"""Publish SMS requests and subscribe to their outcomes from Python.

    async with SmsClient() as client:                       # SMSDISPATCH_BROKER, or broker="kafka://…"
        request = await client.send("acme", "+14155552671", "Your code is 123456")
        outcome = await client.wait_for(request)            # SmsDispatched | SmsFailed
        async for outcome in client.outcomes(tenant="acme"):
            ...

Producers in other languages publish the same JSON (schemas/ holds its JSON Schema), keyed by tenant_id.
"""

from smsdispatch.client._client import SmsClient, new_request_id, parse_outcome
from smsdispatch.client._reading import TopicRecord, read_topic, tail_topic
from smsdispatch.client._tenants import latest_tenant_records, publish_tenant

__all__ = [
    "SmsClient",
    "TopicRecord",
    "latest_tenant_records",
    "new_request_id",
    "parse_outcome",
    "publish_tenant",
    "read_topic",
    "tail_topic",
]
