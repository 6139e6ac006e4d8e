"""Every tenant in every worker: the whole compacted ``sms.tenants`` topic, followed into memory.

Every worker holds every tenant: the dispatcher for the tenants of its partitions, the status receiver for any,
since Twilio's callbacks reach whichever worker the load balancer picks.
:class:`~smsdispatch.runtime.followers.TenantFollower` (in the runtime) reads every partition of ``sms.tenants``
from its beginning with a plain consumer in no group (so it never takes part in, nor waits for, a rebalance) and
keeps following it, feeding it to this module's view; :class:`TenantView` keeps
the latest record per tenant_id (a null value removes it) and answers through a :class:`TenantDirectory`, so
configurations are decrypted in memory only. Faust's GlobalTable would do the same but does not recover
reliably with several workers.

Guarantee: a lookup that finds no ready tenant waits, at most ``wait`` seconds, until the view has applied
every record that was on the topic when the lookup began, then answers again; a tenant whose registration was
acknowledged before its callback arrived is found. Limits: past the bound (Kafka away, the view still loading
a very large topic) the answer is decided with what the view holds, so a tenant registered that instant may be
refused; a tenant the view already holds is not waited for, so a callback signed with credentials newer than
the view's is refused until the view applies them (normally milliseconds). The whole topic is held in memory,
which is fine for a tenant list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from smsdispatch.adapters.sms import ProviderName
from smsdispatch.contract import ErrorInfo
from smsdispatch.core.tenants import ConfigOpener, PlatformOpener, ReadyTenant, TenantDirectory

log = logging.getLogger(__name__)

#: Where each partition of the topic ends now (the offset of its next record).
EndOffsets = Callable[[], Awaitable[Mapping[int, int]]]


class TenantView:
    """The latest record of every tenant, with how far each partition has been applied."""

    def __init__(
        self,
        open_config: ConfigOpener,
        end_offsets: EndOffsets,
        *,
        wait: float = 2.0,
        open_platform: PlatformOpener | None = None,
        default_provider: ProviderName | None = None,
    ) -> None:
        """``open_platform`` and ``default_provider``: see :class:`TenantDirectory`."""
        self._records: dict[bytes, bytes] = {}
        self._positions: dict[int, int] = {}
        self._directory = TenantDirectory(
            self._records, open_config, open_platform=open_platform, default_provider=default_provider
        )
        self._end_offsets = end_offsets
        self._wait = wait
        self._moved = asyncio.Event()
        # The check every new caller joins (it has not read the end offsets yet), and the latest one started.
        self._joinable: asyncio.Future[bool] | None = None
        self._latest: asyncio.Future[bool] | None = None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def directory(self) -> TenantDirectory:
        """Answers from what the view holds now, without waiting (the dispatcher waits with :meth:`caught_up`)."""
        return self._directory

    def apply(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        """Apply the record at ``offset``: it replaces the tenant's record, or removes it when ``value`` is None."""
        if key is not None:  # a record without a key names no tenant (the tenants agent logs it)
            if value is None:
                self._records.pop(key, None)
            else:
                self._records[key] = value
        self.reached(partition, offset + 1)

    def reached(self, partition: int, position: int) -> None:
        """Everything below ``position`` on ``partition`` is applied (the consumer skips compacted offsets)."""
        if position > self._positions.get(partition, 0):
            self._positions[partition] = position
            self._moved.set()

    def has_reached(self, ends: Mapping[int, int]) -> bool:
        """Whether every partition of ``ends`` is applied up to its end there."""
        return all(self._positions.get(partition, 0) >= end for partition, end in ends.items())

    async def lookup(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        """The tenant as :meth:`TenantDirectory.lookup` answers; one not ready is looked up again once the view
        has caught up with the topic (bounded, see the module), since its record may be on its way."""
        answer = self._directory.lookup(tenant_id)
        if isinstance(answer, ReadyTenant):
            return answer
        await self.caught_up()
        return self._directory.lookup(tenant_id)

    async def caught_up(self) -> bool:
        """Wait until every record on the topic now is applied: True, or False after ``wait`` seconds (or when
        the end offsets cannot be read).

        Concurrent callers share one check as long as it has not read the end offsets, so a burst of callbacks
        for unknown tenants costs one request to Kafka, not one each. A caller never joins a check that read
        them before it arrived: that one could miss a record published just before.
        """
        check = self._joinable
        if check is None:
            check = self._joinable = self._latest = asyncio.ensure_future(self._check(self._latest))
        # Shielded: a caller giving up (its request cancelled) must not cancel the others' check.
        return await asyncio.shield(check)

    async def _check(self, previous: asyncio.Future[bool] | None) -> bool:
        this = asyncio.current_task()
        try:
            # Counted from the first caller's arrival, so no caller waits longer, however long the previous took.
            async with asyncio.timeout(self._wait):
                if previous is not None:
                    await asyncio.wait([previous])  # one check at a time, each reading the end offsets once
                self._joinable = None  # from here on, callers arriving may be later than the offsets read below
                ends = await self._end_offsets()
                while not self.has_reached(ends):
                    self._moved.clear()
                    await self._moved.wait()
            return True
        except TimeoutError:
            log.warning(
                "the tenant view is still behind sms.tenants after %.1fs; deciding with what it holds", self._wait
            )
        except Exception as exc:  # Kafka away: decide now with what is held rather than not at all
            log.warning("could not read where sms.tenants ends (%s); deciding with what it holds", type(exc).__name__)
        finally:
            if self._joinable is this:  # timed out before reading: nobody may join a finished check
                self._joinable = None
        return False
