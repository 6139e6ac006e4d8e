"""The streaming layer: the Faust app and its topics, the idempotency ledger, and the tenant table."""
