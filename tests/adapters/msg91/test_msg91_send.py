"""What Msg91Provider sends to the Flow API, and how it reads MSG91's answers (docs/reference/msg91.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from smsdispatch.adapters.msg91 import Msg91Account, Msg91Http, Msg91Provider, Msg91Template
from smsdispatch.adapters.sms import (
    AccountBlocked,
    AuthenticationError,
    Expired,
    MessageRejected,
    OutgoingSms,
    ProviderUnavailable,
    RateLimited,
    ReconciliationUnavailable,
    RetryPolicy,
    UnknownOutcome,
)
from smsdispatch.contract import ErrorCode
from smsdispatch.core.outcomes import error_info

AUTHKEY = "364512AbCdEfGhIjKlMnOp1"
REQUEST_ID = "5762846b4f8d285d378b4567"
TO = "+919876543210"


class FakeMsg91:
    """Answers each POST with the next queued response (success by default) and keeps what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: list[Callable[[httpx.Request], httpx.Response]] = []

    def then(self, *answers: httpx.Response | Exception) -> None:
        for answer in answers:
            self._answers.append(lambda _request, answer=answer: _give(answer))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._answers:
            return self._answers.pop(0)(request)
        return httpx.Response(200, json={"type": "success", "message": REQUEST_ID})

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(request.content) for request in self.requests]


def _give(answer: httpx.Response | Exception) -> httpx.Response:
    if isinstance(answer, Exception):
        raise answer
    return answer


def error(code: str, message: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"type": "error", "message": message, "code": code})


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def fake() -> FakeMsg91:
    return FakeMsg91()


@pytest_asyncio.fixture
async def provider(fake: FakeMsg91) -> AsyncIterator[Msg91Provider]:
    account = Msg91Account(authkey=SecretStr(AUTHKEY), template_id="tpl_otp", sender="SMSDSP", body_var="text")
    http = Msg91Http("https://control.msg91.test", transport=httpx.MockTransport(fake.handle))
    provider = Msg91Provider(account, http, RetryPolicy(max_attempts=3, sleep=no_sleep, jitter=lambda: 0.0))
    yield provider
    await provider.aclose()


@pytest.mark.asyncio
async def test_a_send_posts_the_flow_request_with_the_authkey_header(provider: Msg91Provider, fake: FakeMsg91) -> None:
    result = await provider.send(OutgoingSms(to=TO, body="Your code is 1234", reference="04acmereq-1"))

    [request] = fake.requests
    assert (request.method, request.url.path) == ("POST", "/api/v5/flow/")
    assert request.headers["authkey"] == AUTHKEY
    assert request.headers["content-type"] == "application/json"
    assert fake.bodies() == [
        {
            "template_id": "tpl_otp",
            "short_url": "0",
            "sender": "SMSDSP",
            "CRQID": "04acmereq-1",
            "recipients": [{"mobiles": "919876543210", "text": "Your code is 1234"}],
        }
    ]
    assert (result.message_id, result.provider, result.status, result.attempts) == (REQUEST_ID, "msg91", "accepted", 1)


@pytest.mark.asyncio
async def test_the_number_goes_without_its_plus(provider: Msg91Provider, fake: FakeMsg91) -> None:
    await provider.send(OutgoingSms(to="+447700900123", body="hi"))

    [body] = fake.bodies()
    assert body["recipients"] == [{"mobiles": "447700900123", "text": "hi"}]
    assert "CRQID" not in body  # no reference given, none sent


@pytest.mark.asyncio
async def test_a_requests_own_template_and_variables_replace_the_platforms(
    provider: Msg91Provider, fake: FakeMsg91
) -> None:
    template = Msg91Template("tpl_order", {"name": "Asha", "order": "A-17"})

    await provider.send(OutgoingSms(to=TO, body="shipped"), template)

    [body] = fake.bodies()
    assert body["template_id"] == "tpl_order"
    assert body["recipients"] == [{"name": "Asha", "order": "A-17", "mobiles": "919876543210", "text": "shipped"}]


@pytest.mark.asyncio
async def test_segments_and_encoding_are_counted_as_for_twilio(provider: Msg91Provider) -> None:
    gsm = await provider.send(OutgoingSms(to=TO, body="a" * 161))
    ucs2 = await provider.send(OutgoingSms(to=TO, body="नमस्ते"))

    assert (gsm.segments, gsm.encoding) == (2, "GSM-7")
    assert (ucs2.segments, ucs2.encoding) == (1, "UCS-2")


@pytest.mark.asyncio
async def test_type_error_on_http_200_is_a_failure_with_msg91s_code(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(error("211", "Template is not approved"))

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    assert caught.value.error_code is ErrorCode.PROVIDER_REJECTED
    assert (caught.value.provider_code, caught.value.http_status) == (211, 200)
    assert "Template is not approved" in caught.value.message
    assert len(fake.requests) == 1  # a refusal is not retried


@pytest.mark.asyncio
async def test_an_invalid_number_is_provider_rejected_with_code_202(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(error("202", "invalid mobile number"))

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    info = error_info(caught.value)
    assert (info.code, info.provider_code, info.retryable) == (ErrorCode.PROVIDER_REJECTED, 202, False)


@pytest.mark.asyncio
@pytest.mark.parametrize("code", ["207", "208", "418"])
async def test_an_auth_refusal_is_provider_auth_failed(provider: Msg91Provider, fake: FakeMsg91, code: str) -> None:
    fake.then(error(code, "invalid authkey"))

    with pytest.raises(AuthenticationError) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    assert (caught.value.error_code, caught.value.provider_code) == (ErrorCode.PROVIDER_AUTH_FAILED, int(code))


@pytest.mark.asyncio
async def test_an_http_401_without_a_json_body_is_provider_auth_failed(
    provider: Msg91Provider, fake: FakeMsg91
) -> None:
    fake.then(httpx.Response(401, text="Unauthorized"))

    with pytest.raises(AuthenticationError):
        await provider.send(OutgoingSms(to=TO, body="hi"))


@pytest.mark.asyncio
async def test_insufficient_balance_fails_retryable_after_a_top_up(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(error("301", "Insufficient balance"))

    with pytest.raises(AccountBlocked) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    info = error_info(caught.value)
    assert (info.code, info.provider_code, info.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, 301, True)
    assert len(fake.requests) == 1  # not retried here: a resend once topped up may help


@pytest.mark.asyncio
async def test_429_is_retried_and_then_sent(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(httpx.Response(429, json={"type": "error", "message": "too many requests", "code": "429"}))

    result = await provider.send(OutgoingSms(to=TO, body="hi"))

    assert (result.attempts, len(fake.requests)) == (2, 2)


@pytest.mark.asyncio
async def test_429_until_attempts_run_out_is_rate_limited(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(*(httpx.Response(429) for _ in range(3)))

    with pytest.raises(RateLimited) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    assert (caught.value.attempts, len(fake.requests)) == (3, 3)


@pytest.mark.asyncio
async def test_a_connection_never_established_is_retried(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(httpx.ConnectError("refused"))

    result = await provider.send(OutgoingSms(to=TO, body="hi"))

    assert (result.attempts, len(fake.requests)) == (2, 2)


@pytest.mark.asyncio
async def test_connections_never_established_run_out_as_provider_unavailable(
    provider: Msg91Provider, fake: FakeMsg91
) -> None:
    fake.then(*(httpx.ConnectError("refused") for _ in range(3)))

    with pytest.raises(ProviderUnavailable):
        await provider.send(OutgoingSms(to=TO, body="hi"))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(503, json={"type": "error", "message": "down", "code": "601"}),
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("connection closed mid-answer"),
        httpx.Response(200, json={"type": "success"}),
        httpx.Response(200, text="<html>proxy</html>"),
    ],
    ids=["500", "503", "read-timeout", "dropped", "success-without-id", "not-json"],
)
async def test_an_answer_lost_after_sending_is_unknown_and_never_resent(
    provider: Msg91Provider, fake: FakeMsg91, answer: httpx.Response | Exception
) -> None:
    fake.then(answer)

    with pytest.raises(UnknownOutcome) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    assert caught.value.error_code is ErrorCode.OUTCOME_UNKNOWN
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_find_sent_says_msg91_cannot_be_asked(provider: Msg91Provider, fake: FakeMsg91) -> None:
    with pytest.raises(ReconciliationUnavailable):
        await provider.find_sent(TO, "hi", datetime.now(UTC))

    assert fake.requests == []


@pytest.mark.asyncio
async def test_an_expired_message_is_not_sent(provider: Msg91Provider, fake: FakeMsg91) -> None:
    with pytest.raises(Expired):
        await provider.send(OutgoingSms(to=TO, body="hi", expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    assert fake.requests == []


@pytest.mark.asyncio
async def test_the_authkey_never_appears_in_an_error_or_repr(provider: Msg91Provider, fake: FakeMsg91) -> None:
    fake.then(error("207", f"authkey {AUTHKEY} is invalid"))

    with pytest.raises(AuthenticationError) as caught:
        await provider.send(OutgoingSms(to=TO, body="hi"))

    assert AUTHKEY not in str(caught.value)
    assert AUTHKEY not in repr(provider)
