"""The core: what the worker does, with no Faust in it (a test enforces it), so it is tested without Kafka.

Decoding and admitting requests, the dispatcher and its senders, outcomes, the idempotency ledger and its
stores, the tenant table and views, opt-outs, status receipts, polling, tenant webhooks, the log sink, rates,
metrics. The runtime (:mod:`smsdispatch.runtime`) feeds it records and runs it; it talks to the outside world
only through the adapters and the contract.
"""
