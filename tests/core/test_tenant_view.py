"""TenantView: the latest record of every tenant, and a bounded wait for records still on their way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.contract import ErrorCode, ErrorInfo, TenantConfig, TenantRecord
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.core.tenants import ReadyTenant

pytestmark = pytest.mark.asyncio

KEYRING = Keyring.from_value(generate_key())
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def record(tenant_id: str = "acme", *, creds: str = "tok-1", verified: bool = True) -> bytes:
    config = TenantConfig(account_sid="AC" + "0" * 32, auth_token=SecretStr(creds), from_number="+15005550006")
    return TenantRecord(tenant_id=tenant_id, config=KEYRING.seal(config), verified=verified, updated_at=T0).to_bytes()


class Topic:
    """Where the topic ends, as the view asks for it; counts the asks."""

    def __init__(self, ends: dict[int, int] | None = None) -> None:
        self.ends = ends or {0: 0, 1: 0}
        self.asked = 0
        self.fail: Exception | None = None

    async def __call__(self) -> dict[int, int]:
        self.asked += 1
        await asyncio.sleep(0)  # a request to Kafka: others run meanwhile
        if self.fail is not None:
            raise self.fail
        return dict(self.ends)


def token_of(answer: ReadyTenant | ErrorInfo) -> str | None:
    assert isinstance(answer, ReadyTenant), answer
    return answer.config.signing_token


def code_of(answer: ReadyTenant | ErrorInfo) -> ErrorCode:
    assert isinstance(answer, ErrorInfo), answer
    return answer.code


async def test_the_latest_record_of_a_tenant_is_the_one_looked_up_decrypted() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 2}))

    view.apply(0, 0, b"acme", record(creds="old"))
    first = await view.lookup("acme")
    view.apply(0, 1, b"acme", record(creds="new"))

    assert token_of(first) == "old"
    assert token_of(await view.lookup("acme")) == "new"
    assert len(view) == 1


async def test_a_null_value_removes_the_tenant() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 2}))
    view.apply(0, 0, b"acme", record())

    view.apply(0, 1, b"acme", None)

    assert code_of(await view.lookup("acme")) is ErrorCode.UNKNOWN_TENANT
    assert len(view) == 0


async def test_every_partition_is_held_not_one() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 1, 5: 1}))

    view.apply(0, 0, b"acme", record("acme", creds="a"))
    view.apply(5, 0, b"globex", record("globex", creds="g"))

    assert [token_of(await view.lookup(name)) for name in ("acme", "globex")] == ["a", "g"]


async def test_an_unverified_or_unreadable_record_is_not_ready() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 2}))
    view.apply(0, 0, b"pending", record("pending", verified=False))
    view.apply(0, 1, b"junk", b"not a tenant record")

    assert code_of(await view.lookup("pending")) is ErrorCode.TENANT_NOT_VERIFIED
    assert code_of(await view.lookup("junk")) is ErrorCode.TENANT_NOT_VERIFIED


async def test_a_record_without_a_key_is_skipped_but_counts_as_applied() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 1}))

    view.apply(0, 0, None, record())

    assert len(view) == 0
    assert view.has_reached({0: 1})


async def test_a_known_tenant_is_answered_without_asking_where_the_topic_ends() -> None:
    topic = Topic({0: 1})
    view = TenantView(KEYRING.unseal, topic)
    view.apply(0, 0, b"acme", record())

    await view.lookup("acme")

    assert topic.asked == 0


async def test_a_tenant_not_held_yet_is_waited_for_until_the_view_reaches_the_end_of_the_topic() -> None:
    topic = Topic({0: 0, 1: 3})  # the registration is on the topic, not yet applied
    view = TenantView(KEYRING.unseal, topic, wait=30)

    looking = asyncio.create_task(view.lookup("acme"))
    await asyncio.sleep(0.05)
    view.apply(1, 0, b"other", record("other"))
    view.apply(1, 1, b"acme", record())
    await asyncio.sleep(0.05)
    waited_past_the_tenant = not looking.done()  # offset 2 is still to come: it might change acme again
    view.apply(1, 2, b"acme", record(creds="newer"))

    assert waited_past_the_tenant
    assert token_of(await asyncio.wait_for(looking, 5)) == "newer"


async def test_an_unknown_tenant_is_refused_as_soon_as_the_view_is_at_the_end() -> None:
    topic = Topic({0: 1, 1: 0})
    view = TenantView(KEYRING.unseal, topic, wait=30)
    view.apply(0, 0, b"acme", record())

    answer = await asyncio.wait_for(view.lookup("ghost"), 1)

    assert code_of(answer) is ErrorCode.UNKNOWN_TENANT
    assert topic.asked == 1


async def test_offsets_compaction_removed_count_as_reached_through_the_consumers_position() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 10}), wait=30)
    view.apply(0, 3, b"acme", record())  # offsets 0-2 and 4-9 were compacted away

    view.reached(0, 10)

    assert await asyncio.wait_for(view.caught_up(), 1)


async def test_the_wait_is_bounded_and_then_decided_with_what_is_held(caplog: pytest.LogCaptureFixture) -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 5}), wait=0.2)  # the view never gets there
    started = asyncio.get_running_loop().time()

    answer = await view.lookup("ghost")

    assert code_of(answer) is ErrorCode.UNKNOWN_TENANT
    assert asyncio.get_running_loop().time() - started < 2
    assert "still behind sms.tenants" in caplog.text


async def test_when_the_end_of_the_topic_cannot_be_read_it_is_decided_at_once(caplog: pytest.LogCaptureFixture) -> None:
    topic = Topic()
    topic.fail = ConnectionError("Kafka is away")
    view = TenantView(KEYRING.unseal, topic, wait=30)

    answer = await asyncio.wait_for(view.lookup("ghost"), 1)

    assert code_of(answer) is ErrorCode.UNKNOWN_TENANT
    assert "could not read where sms.tenants ends (ConnectionError)" in caplog.text


async def test_lookups_arriving_together_share_one_read_of_the_end_offsets() -> None:
    topic = Topic({0: 1})
    view = TenantView(KEYRING.unseal, topic, wait=30)

    waiting = [asyncio.create_task(view.lookup(f"ghost-{n}")) for n in range(50)]
    await asyncio.sleep(0.05)
    view.apply(0, 0, b"ghost-7", record("ghost-7"))
    answers = await asyncio.wait_for(asyncio.gather(*waiting), 5)

    assert topic.asked == 1
    assert sum(isinstance(answer, ReadyTenant) for answer in answers) == 1


async def test_a_lookup_arriving_after_the_end_offsets_were_read_waits_for_a_later_read() -> None:
    topic = Topic({0: 1})
    view = TenantView(KEYRING.unseal, topic, wait=30)
    first = asyncio.create_task(view.lookup("ghost"))
    await asyncio.sleep(0.05)  # the first check has read {0: 1} and waits for offset 0

    topic.ends = {0: 2}  # the tenant is registered now, then its callback arrives
    second = asyncio.create_task(view.lookup("late"))
    await asyncio.sleep(0.05)
    view.apply(0, 0, b"ghost", record("ghost"))
    first_answer = await asyncio.wait_for(first, 5)
    await asyncio.sleep(0.05)
    second_waits_for_its_record = not second.done()
    view.apply(0, 1, b"late", record("late"))

    assert isinstance(first_answer, ReadyTenant)
    assert second_waits_for_its_record
    assert isinstance(await asyncio.wait_for(second, 5), ReadyTenant)
    assert topic.asked == 2


async def test_a_caller_giving_up_does_not_cancel_the_others_wait() -> None:
    view = TenantView(KEYRING.unseal, Topic({0: 1}), wait=30)
    impatient = asyncio.create_task(view.lookup("acme"))
    patient = asyncio.create_task(view.lookup("acme"))
    await asyncio.sleep(0.05)

    impatient.cancel()
    await asyncio.sleep(0.05)
    view.apply(0, 0, b"acme", record())

    assert isinstance(await asyncio.wait_for(patient, 5), ReadyTenant)
    assert impatient.cancelled()
