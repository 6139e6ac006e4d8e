"""The topics of docs/contract.md: their names, and the cleanup policy each is created with.

Pure data, for producers and consumers alike (the client, the CLI, the worker). Creating them on a broker is
the runtime's job (:mod:`smsdispatch.runtime.topics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REQUESTED = "sms.requested"
DISPATCHED = "sms.dispatched"
FAILED = "sms.failed"
STATUS = "sms.status"
TENANTS = "sms.tenants"
SUPPRESSIONS = "sms.suppressions"
OUTCOME_TOPICS = (DISPATCHED, FAILED, STATUS)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    config: dict[str, str] = field(default_factory=dict)


CONTRACT_TOPICS = (
    TopicSpec(REQUESTED),
    TopicSpec(DISPATCHED),
    TopicSpec(FAILED),
    TopicSpec(STATUS),
    # Compacted: the latest record per tenant_id is the tenant's configuration; a null value removes it.
    TopicSpec(TENANTS, {"cleanup.policy": "compact"}),
    # Compacted too: one record per (tenant, number) that opted out; a null value opts it back in.
    TopicSpec(SUPPRESSIONS, {"cleanup.policy": "compact"}),
)
