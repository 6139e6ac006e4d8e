"""TwilioProvider.send(): what it asks Twilio for, and how it reads the answer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import pytest

from smsdispatch.adapters.twilio import (
    AuthenticationError,
    InvalidMessage,
    MessageRejected,
    MessageTooLong,
    OutgoingSms,
    ProviderError,
    ProviderUnavailable,
    TwilioHttp,
    TwilioProvider,
    UnknownOutcome,
)
from smsdispatch.contract import ErrorCode
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, form_of, twilio_error
from tests.accounts import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    SERVICE_SID,
    api_key_config,
    token_config,
)

from .conftest import TO_NUMBER, FakeClock, fast_policy

MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def basic_credentials(request: httpx.Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


@pytest.mark.asyncio
async def test_send_posts_from_to_and_body_form_encoded_to_the_accounts_messages(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello there"))

    [request] = fake.requests
    assert request.method == "POST"
    assert request.url.path == MESSAGES_PATH
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(request) == {"To": TO_NUMBER, "From": FROM_NUMBER, "Body": "Hello there"}
    assert basic_credentials(request) == (ACCOUNT_SID, AUTH_TOKEN)


@pytest.mark.asyncio
async def test_send_returns_the_twilio_sid_as_message_id(provider: TwilioProvider, fake: FakeTwilio) -> None:
    result = await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert result.message_id == fake.messages[0]["sid"]
    assert result.message_id.startswith("SM")
    assert (result.provider, result.status, result.to, result.attempts) == ("twilio", "queued", TO_NUMBER, 1)
    assert (result.segments, result.encoding) == (1, "GSM-7")
    assert result.date_created is not None
    assert result.date_created.tzinfo is not None


@pytest.mark.asyncio
async def test_error_code_in_a_2xx_response_raises_message_rejected(provider: TwilioProvider, fake: FakeTwilio) -> None:
    fake.then(httpx.Response(201, json={"sid": None, "code": 21610, "message": "Attempt to send to unsubscribed"}))

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert caught.value.provider_code == 21610
    assert caught.value.error_code is ErrorCode.PROVIDER_REJECTED
    assert caught.value.retryable is False
    assert "unsubscribed" in caught.value.message


@pytest.mark.asyncio
async def test_error_code_field_of_a_created_message_raises_message_rejected(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    document = {"sid": "SM" + "1" * 32, "status": "failed", "error_code": 30007, "error_message": "Filtered"}
    fake.then(httpx.Response(201, json=document))

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert caught.value.provider_code == 30007


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("connection refused"), ProviderUnavailable),
        (httpx.ReadError("connection reset by peer"), UnknownOutcome),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), UnknownOutcome),
    ],
)
async def test_transport_error_propagates_as_the_provider_error_for_what_was_sent(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock, raised: Exception, expected: type[Exception]
) -> None:
    provider = TwilioProvider(token_config(), http, fast_policy(clock, max_attempts=1))
    fake.then(raised)

    with pytest.raises(expected) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert caught.value.__cause__ is raised


@pytest.mark.asyncio
async def test_messaging_service_sender_is_sent_as_messaging_service_sid(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    provider = TwilioProvider(token_config(from_number=SERVICE_SID), http, fast_policy(clock))

    result = await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert form_of(fake.requests[0]) == {"To": TO_NUMBER, "MessagingServiceSid": SERVICE_SID, "Body": "Hello"}
    assert result.status == "accepted"
    # Twilio says num_segments "0" for a service send; the count is ours.
    assert result.segments == 1


@pytest.mark.asyncio
async def test_api_key_authenticates_with_the_key_and_keeps_the_account_sid_in_the_path(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    provider = TwilioProvider(api_key_config(), http, fast_policy(clock))

    await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert basic_credentials(fake.requests[0]) == (API_KEY_SID, API_KEY_SECRET)
    assert fake.requests[0].url.path == MESSAGES_PATH


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("message_url", "expected"),
    [(None, None), ("https://hooks.example.com/b?request_id=r1", "https://hooks.example.com/b?request_id=r1")],
)
async def test_status_callback_is_sent_only_when_the_message_carries_one(
    provider: TwilioProvider, fake: FakeTwilio, message_url: str | None, expected: str | None
) -> None:
    await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello", status_callback=message_url))

    assert form_of(fake.requests[0]).get("StatusCallback") == expected


@pytest.mark.asyncio
async def test_body_over_1600_characters_is_refused_before_any_request(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    with pytest.raises(MessageTooLong) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="a" * 1601))

    assert fake.requests == []
    assert caught.value.error_code is ErrorCode.INVALID_REQUEST
    assert (caught.value.retryable, caught.value.attempts) == (False, 0)


@pytest.mark.asyncio
async def test_body_of_exactly_1600_characters_is_sent(provider: TwilioProvider, fake: FakeTwilio) -> None:
    result = await provider.send(OutgoingSms(to=TO_NUMBER, body="a" * 1600))

    assert len(fake.requests) == 1
    assert result.segments == 11


@pytest.mark.asyncio
async def test_empty_body_is_refused_before_any_request(provider: TwilioProvider, fake: FakeTwilio) -> None:
    with pytest.raises(InvalidMessage):
        await provider.send(OutgoingSms(to=TO_NUMBER, body=""))

    assert fake.requests == []


@pytest.mark.asyncio
async def test_unicode_body_reports_ucs2_segments(provider: TwilioProvider) -> None:
    result = await provider.send(OutgoingSms(to=TO_NUMBER, body="Привет! " * 10))

    assert (result.segments, result.encoding) == (2, "UCS-2")


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "code"), [(401, 20003), (403, 20403), (403, 20008)])
async def test_401_and_403_on_create_raise_authentication_error(
    provider: TwilioProvider, fake: FakeTwilio, status: int, code: int
) -> None:
    fake.then(twilio_error(status, code, "Authenticate"))

    with pytest.raises(AuthenticationError) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert caught.value.error_code is ErrorCode.PROVIDER_AUTH_FAILED
    assert (caught.value.http_status, caught.value.provider_code) == (status, code)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_4xx_with_a_code_raises_message_rejected_without_retrying(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(400, 21211, "The 'To' number +15005550001 is not a valid phone number."))

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to="+15005550001", body="Hello"))

    assert (caught.value.provider_code, caught.value.http_status, caught.value.attempts) == (21211, 400, 1)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_4xx_that_is_not_twilio_json_is_rejected_without_a_provider_code(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(httpx.Response(413, text="<html>Request Entity Too Large</html>"))

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert caught.value.provider_code is None
    assert "413" in caught.value.message


@pytest.mark.asyncio
async def test_2xx_without_a_message_sid_is_an_unknown_outcome(provider: TwilioProvider, fake: FakeTwilio) -> None:
    fake.then(httpx.Response(201, text="<html>ok</html>"))

    with pytest.raises(UnknownOutcome):
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_unknown_outcome_carries_what_reconciliation_needs(provider: TwilioProvider, fake: FakeTwilio) -> None:
    before = datetime.now(UTC)
    fake.then(twilio_error(500, 20500, "Internal Server Error"))

    with pytest.raises(UnknownOutcome) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Your code is 1234"))

    error = caught.value
    assert (error.to, error.body) == (TO_NUMBER, "Your code is 1234")
    assert before <= error.sent_after <= datetime.now(UTC)
    assert (error.http_status, error.provider_code, error.error_code) == (500, 20500, ErrorCode.OUTCOME_UNKNOWN)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        twilio_error(401, 20003, "Authenticate"),
        twilio_error(500, 20500, "Internal Server Error"),
        httpx.ConnectError("All connection attempts failed"),
    ],
)
async def test_error_messages_and_reprs_never_contain_the_credentials(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock, answer: httpx.Response | Exception
) -> None:
    for config, secret in ((token_config(), AUTH_TOKEN), (api_key_config(), API_KEY_SECRET)):
        provider = TwilioProvider(config, http, fast_policy(clock, max_attempts=1))
        fake.then(answer)

        with pytest.raises(ProviderError) as caught:
            await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello"))

        for text in (str(caught.value), repr(caught.value), repr(provider)):
            assert secret not in text
