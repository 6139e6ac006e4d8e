"""The demo's batch: what it sends, what each message should come to, and collecting the outcomes.

The batch covers every path a request can take: sent through a tenant's own Twilio account (GSM-7, UCS-2,
several segments, a Messaging Service, an API key, test credentials) or through the platform default, MSG91 (a
tenant added without a provider, and one whose Twilio account is not verified), refused by Twilio (each magic
"To" number of the test credentials) or by MSG91 (an invalid number), refused by the worker (an unknown tenant,
a record that is not JSON) and the same request_id published twice,
which must give one SMS and the same outcome twice; a request past its ``expires_at`` and one to a recipient on
the tenant's suppression list are answered without a send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from smsdispatch.client import SmsClient
from smsdispatch.contract import ErrorCode, Outcome, SmsDispatched, SmsFailed, SmsRequested
from smsdispatch.tools.demo.accounts import DemoAccounts

RECIPIENT = "+14155552671"
INDIAN_RECIPIENT = "+919876543210"
#: Ends in 0202: the simulator's MSG91 answers it as an invalid mobile number (code 202).
MSG91_INVALID = "+919876540202"
#: A recipient of the live tenant who replied STOP: the demo puts them on the tenant's suppression list first.
OPTED_OUT = "+14155550199"
LONG_BODY = (
    "Your parcel 7731 is out for delivery today between 10:00 and 14:00. The driver will call when nearby. "
    "If nobody is home it goes to the pick-up point at 12 Market Street, open 8:00-20:00 on weekdays and "
    "9:00-13:00 on Saturdays. Bring an ID and this message. To choose another day or a neighbour, reply "
    "with the date or the neighbour's house number. Reply STOP to opt out of delivery updates."
)
# Twilio's magic "To" numbers for test credentials and the error code each one gets.
MAGIC_TO = {
    "+15005550001": (21211, "invalid number"),
    "+15005550002": (21612, "cannot route"),
    "+15005550003": (21408, "no permission for region"),
    "+15005550004": (21610, "recipient unsubscribed"),
    "+15005550009": (21614, "not a mobile number"),
}


@dataclass(frozen=True)
class Expected:
    """What an outcome should say: dispatched, or failed with this error code (and provider code); through
    ``provider`` when given."""

    error_code: ErrorCode | None = None
    provider_code: int | None = None
    segments: int | None = None
    encoding: str | None = None
    provider: str | None = None

    def matches(self, outcome: Outcome) -> bool:
        if self.provider is not None and outcome.provider != self.provider:
            return False
        if self.error_code is None:
            return (
                isinstance(outcome, SmsDispatched)
                and self.segments in (None, outcome.segments)
                and self.encoding in (None, outcome.encoding)
            )
        return (
            isinstance(outcome, SmsFailed)
            and outcome.error.code == self.error_code
            and outcome.error.provider_code == self.provider_code
        )


@dataclass(frozen=True)
class Planned:
    """One item of the batch: a request (published ``times`` times) or a malformed record."""

    label: str
    expected: Expected
    request: SmsRequested | None = None
    raw: bytes | None = None
    key: bytes = b""
    times: int = 1
    receipts: bool = False  # a live tenant with an auth token: delivery receipts come back

    def owns(self, outcome: Outcome) -> bool:
        if self.request is not None:
            return outcome.request_id == self.request.request_id and outcome.tenant_id == self.request.tenant_id
        return (
            isinstance(outcome, SmsFailed)
            and outcome.request_id is None
            and self.raw is not None
            and outcome.raw is not None
            and self.raw.decode(errors="replace") in outcome.raw
        )


@dataclass
class Collected:
    """The outcomes of a batch, per planned item, in the order they arrived."""

    plan: list[Planned]
    outcomes: dict[int, list[Outcome]] = field(default_factory=dict)

    @property
    def expected_count(self) -> int:
        return sum(item.times for item in self.plan)

    @property
    def count(self) -> int:
        return sum(len(found) for found in self.outcomes.values())

    def add(self, outcome: Outcome) -> bool:
        for index, item in enumerate(self.plan):
            if item.owns(outcome):
                found = self.outcomes.setdefault(index, [])
                if len(found) < item.times:
                    found.append(outcome)
                    return True
        return False

    def unexpected(self) -> list[Planned]:
        """Items whose outcome is missing or differs from what the demo expected; a request published twice
        must have the very same outcome twice (the worker repeats the first one, it does not send again)."""
        wrong = []
        for index, item in enumerate(self.plan):
            found = self.outcomes.get(index, [])
            if (
                len(found) < item.times
                or not all(item.expected.matches(outcome) for outcome in found)
                or len({outcome.model_dump_json() for outcome in found}) > 1
            ):
                wrong.append(item)
        return wrong


def build_batch(accounts: DemoAccounts) -> list[Planned]:
    tenants = accounts.tenants()
    run = accounts.run_id

    def send(
        name: str,
        slug: str,
        label: str,
        body: str,
        to: str = RECIPIENT,
        expected: Expected | None = None,
        times: int = 1,
        expires_at: datetime | None = None,
    ) -> Planned:
        tenant = tenants[name].tenant_id if name in tenants else accounts.tenant_id(name)
        request = SmsRequested(
            request_id=f"{run}-{slug}",
            tenant_id=tenant,
            to=to,
            body=body,
            metadata={"demo": run},
            expires_at=expires_at,
        )
        receipts = name in tenants and tenants[name].gets_receipts
        return Planned(
            label, expected or Expected(), request=request, key=tenant.encode(), times=times, receipts=receipts
        )

    batch = [
        send(
            "live",
            "gsm7",
            "GSM-7, one segment",
            "Your acme code is 481516. It expires in 10 minutes.",
            expected=Expected(segments=1, encoding="GSM-7"),
        ),
        send(
            "live",
            "emoji",
            "emoji: UCS-2",
            "Your order has shipped \N{PACKAGE} see you soon \N{WAVING HAND SIGN}",
            expected=Expected(segments=1, encoding="UCS-2"),
        ),
        send("live", "long", "long: 3 segments", LONG_BODY, expected=Expected(segments=3, encoding="GSM-7")),
        send("service", "service", "via a Messaging Service", "Globex: your appointment is tomorrow at 9:30."),
        send("apikey", "apikey", "REST auth with an API key", "Initech: your report is ready."),
        send("test", "test-ok", "test credentials, accepted", "Test message: accepted, never delivered."),
        send("live", "twice", "same request_id twice: one SMS", "Sent once even when published twice.", times=2),
        send(
            "live",
            "expired",
            "expires_at passed: not sent",
            "Your code is 271828; it expired a minute ago.",
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
            expected=Expected(ErrorCode.EXPIRED),
        ),
        send(
            "live",
            "opted-out",
            f"{OPTED_OUT} replied STOP: not sent",
            "Nobody should get this.",
            to=OPTED_OUT,
            expected=Expected(ErrorCode.RECIPIENT_OPTED_OUT, 21610),
        ),
    ]
    for to, (code, what) in MAGIC_TO.items():
        batch.append(
            send(
                "test",
                f"to-{to[-4:]}",
                f"magic To {to}: {what}",
                "Refused by Twilio.",
                to=to,
                expected=Expected(ErrorCode.PROVIDER_REJECTED, code),
            )
        )
    batch += [
        send(
            "nobody",
            "unknown",
            "tenant never registered",
            "No such tenant.",
            expected=Expected(ErrorCode.UNKNOWN_TENANT),
        ),
        send(
            "platform",
            "platform",
            "platform default: MSG91",
            "Hooli: your verification code is 662607.",
            to=INDIAN_RECIPIENT,
            expected=Expected(provider="msg91", segments=1, encoding="GSM-7"),
        ),
        send(
            "unverified",
            "unverified",
            "Twilio not verified: MSG91",
            "Umbrella: your booking is confirmed.",
            to=INDIAN_RECIPIENT,
            expected=Expected(provider="msg91"),
        ),
        send(
            "platform",
            "msg91-invalid",
            "MSG91 refuses: invalid number",
            "Refused by MSG91.",
            to=MSG91_INVALID,
            expected=Expected(ErrorCode.PROVIDER_REJECTED, 202, provider="msg91"),
        ),
        Planned(
            "malformed record (not JSON)",
            Expected(ErrorCode.INVALID_REQUEST),
            raw=f"{{this is not JSON, demo {run}".encode(),
            key=tenants["live"].tenant_id.encode(),
        ),
    ]
    return batch


async def publish_batch(client: SmsClient, batch: list[Planned]) -> None:
    """Publish every item, in order; the duplicate's second copy goes last, after everything else."""
    repeats: list[SmsRequested] = []
    for item in batch:
        if item.request is not None:
            await client.publish(item.request)
            repeats += [item.request] * (item.times - 1)
        elif item.raw is not None:
            await client.publish_raw(item.key, item.raw)
    for request in repeats:
        await client.publish(request)


async def collect_outcomes(
    client: SmsClient,
    batch: list[Planned],
    *,
    since_ms: int,
    timeout: float,  # noqa: ASYNC109 - one deadline for the whole batch
    on_progress: Callable[[int, int], None],
) -> Collected:
    """Follow sms.dispatched and sms.failed from ``since_ms`` until every item has its outcomes.

    Returns what arrived within ``timeout`` seconds, complete or not: the caller reports what is missing.
    """
    collected = Collected(batch)
    stop = asyncio.Event()

    async def follow() -> None:
        outcomes = client.outcomes(start_ms=since_ms, stop=stop)
        async with aclosing(outcomes):  # type: ignore[type-var]  # an async generator has aclose()
            async for outcome in outcomes:
                if collected.add(outcome):
                    on_progress(collected.count, collected.expected_count)
                    if collected.count >= collected.expected_count:
                        return

    on_progress(0, collected.expected_count)
    try:
        await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        pass
    finally:
        stop.set()
    return collected


async def sms_at_simulator(simulator_url: str, body: str) -> int | None:
    """How many messages with ``body`` the simulator accepted (None if it could not be asked)."""
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            messages = (await http.get(f"{simulator_url}/_sim/messages")).raise_for_status().json()
    except (httpx.HTTPError, ValueError):
        return None
    return sum(1 for message in messages if isinstance(message, dict) and message.get("body") == body)
