"""TwilioProvider.find_sent(): settling an unknown outcome from Twilio's message list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from smsdispatch.adapters.twilio import (
    OutgoingSms,
    ReconciliationUnavailable,
    TwilioHttp,
    TwilioProvider,
    UnknownOutcome,
)
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, message_json, page_json, twilio_error
from tests.accounts import ACCOUNT_SID, FROM_NUMBER, SERVICE_SID, token_config

from .conftest import TO_NUMBER, FakeClock, fast_policy

MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
SENT_AFTER = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def stored(body: str, created: datetime, *, to: str = TO_NUMBER, status: str = "queued") -> dict[str, object]:
    return message_json(
        account_sid=ACCOUNT_SID, to=to, from_=FROM_NUMBER, body=body, date_created=created, status=status
    )


@pytest.mark.asyncio
async def test_find_sent_returns_the_message_with_the_same_body_created_after_the_send(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    wanted = stored("Your code is 1234", SENT_AFTER + timedelta(seconds=1), status="sent")
    fake.messages += [
        stored("Your code is 1234", SENT_AFTER - timedelta(hours=1)),
        stored("Your code is 9999", SENT_AFTER + timedelta(seconds=2)),
        wanted,
    ]

    found = await provider.find_sent(TO_NUMBER, "Your code is 1234", SENT_AFTER)

    assert found is not None
    assert (found.message_id, found.status, found.to) == (wanted["sid"], "sent", TO_NUMBER)
    assert (found.segments, found.encoding) == (1, "GSM-7")
    assert found.date_created == SENT_AFTER + timedelta(seconds=1)


@pytest.mark.asyncio
async def test_find_sent_tolerates_a_small_clock_skew(provider: TwilioProvider, fake: FakeTwilio) -> None:
    fake.messages.append(stored("Hello", SENT_AFTER - timedelta(seconds=30)))

    assert await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER) is not None


@pytest.mark.asyncio
async def test_find_sent_returns_none_when_twilio_has_no_such_message(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.messages.append(stored("Hello", SENT_AFTER - timedelta(minutes=10)))

    assert await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER) is None


@pytest.mark.asyncio
async def test_find_sent_filters_by_to_and_from_but_not_by_date_sent(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    # A message accepted but not yet sent has no date_sent: a DateSent filter would hide exactly that one.
    await provider.find_sent(TO_NUMBER, "Hello", datetime(2024, 5, 1, 0, 0, 30, tzinfo=UTC))

    [request] = fake.requests
    assert (request.method, request.url.path) == ("GET", MESSAGES_PATH)
    assert dict(request.url.params) == {"To": TO_NUMBER, "From": FROM_NUMBER, "PageSize": "50"}


@pytest.mark.asyncio
async def test_find_sent_stops_paging_at_a_page_older_than_the_send(provider: TwilioProvider, fake: FakeTwilio) -> None:
    fake.messages.extend(stored("Old", SENT_AFTER - timedelta(hours=h)) for h in range(1, 200))

    assert await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER) is None
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_find_sent_through_a_messaging_service_does_not_filter_on_from(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    provider = TwilioProvider(token_config(from_number=SERVICE_SID), http, fast_policy(clock))

    await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER)

    assert "From" not in fake.requests[0].url.params


@pytest.mark.asyncio
async def test_find_sent_follows_next_page_uri(provider: TwilioProvider, fake: FakeTwilio) -> None:
    later = stored("Hello", SENT_AFTER + timedelta(seconds=5))
    next_uri = f"{MESSAGES_PATH}?To=%2B14155552671&PageSize=50&Page=1&PageToken=PAabc"
    fake.then(
        httpx.Response(200, json=page_json(MESSAGES_PATH, [stored("Other", SENT_AFTER)], next_page_uri=next_uri)),
        httpx.Response(200, json=page_json(MESSAGES_PATH, [later])),
    )

    found = await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER)

    assert found is not None
    assert found.message_id == later["sid"]
    assert str(fake.requests[1].url) == f"https://api.twilio.test{next_uri}"


@pytest.mark.asyncio
async def test_find_sent_with_more_pages_than_it_may_read_is_unavailable_not_none(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    endless = page_json(MESSAGES_PATH, [], next_page_uri=f"{MESSAGES_PATH}?Page=1&PageToken=PAnext")
    fake.then(*(httpx.Response(200, json=endless) for _ in range(3)))

    with pytest.raises(ReconciliationUnavailable):
        await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER, max_pages=3)

    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_find_sent_with_several_matches_cannot_tell_which_is_ours(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.messages += [
        stored("Hello", SENT_AFTER + timedelta(seconds=9)),
        stored("Hello", SENT_AFTER + timedelta(seconds=1)),
    ]

    with pytest.raises(ReconciliationUnavailable):
        await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER)


@pytest.mark.asyncio
async def test_find_sent_ignores_messages_known_to_belong_to_other_requests(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    theirs, ours = (
        stored("Hello", SENT_AFTER + timedelta(seconds=1)),
        stored("Hello", SENT_AFTER + timedelta(seconds=9)),
    )
    fake.messages += [theirs, ours]

    found = await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER, exclude={theirs["sid"]})
    alone = await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER, exclude={theirs["sid"], ours["sid"]})

    assert found is not None
    assert found.message_id == ours["sid"]
    assert alone is None


@pytest.mark.asyncio
async def test_find_sent_with_test_credentials_raises_reconciliation_unavailable(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"))

    with pytest.raises(ReconciliationUnavailable) as caught:
        await provider.find_sent(TO_NUMBER, "Hello", SENT_AFTER)

    assert caught.value.provider_code == 20008
    assert caught.value.error_code == "outcome_unknown"


@pytest.mark.asyncio
async def test_find_sent_finds_the_message_behind_an_unknown_outcome_that_took_two_attempts(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(429, 20429, "Too Many Requests"), fake.accepted_then(twilio_error(500, 20500, "Oops")))
    with pytest.raises(UnknownOutcome) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Accepted, then 500"))

    error = caught.value
    found = await provider.find_sent(error.to, error.body, error.sent_after)

    assert found is not None
    assert found.message_id == fake.messages[0]["sid"]
    assert error.attempts == 2
    assert len(fake.creates()) == 2
