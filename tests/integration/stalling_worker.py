"""``smsdispatch worker`` whose recovery after its first rebalance never receives its tenants-changelog records:
the stall :mod:`smsdispatch.runtime.recovery_watchdog` exists for, made on purpose. Run as
``python -m tests.integration.stalling_worker worker ARGS…``.

While the worker holds its second assignment (the one after its first rebalance), every
``<app_id>-tenants-changelog`` record the fetch loop delivers is dropped on its way to the tables, as if it had
never come; the fetch position moves past it all the same. From the third assignment on, records arrive as usual.
"""

from __future__ import annotations

import sys
from typing import Any

from smsdispatch.cli import main
from smsdispatch.runtime.app import DrainingApp

_assignments = 0
_on_partitions_assigned = DrainingApp._on_partitions_assigned
_new_consumer = DrainingApp._new_consumer


async def _counting_assignments(self: DrainingApp, assigned: Any, *args: Any, **kwargs: Any) -> Any:
    global _assignments
    _assignments += 1
    return await _on_partitions_assigned(self, assigned, *args, **kwargs)


def _stalling_consumer(self: DrainingApp) -> Any:
    consumer = _new_consumer(self)
    deliver = consumer.callback

    async def callback(message: Any) -> Any:
        if _assignments == 2 and message.topic.endswith("-tenants-changelog"):
            return None
        return await deliver(message)

    consumer.callback = callback
    return consumer


if __name__ == "__main__":
    DrainingApp._on_partitions_assigned = _counting_assignments  # type: ignore[method-assign]
    DrainingApp._new_consumer = _stalling_consumer  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
