"""Where each accepted message goes next, and the signed status callbacks that report it.

Live messages move ``queued -> sent -> delivered`` (through a Messaging Service: ``accepted -> queued -> sent ->
delivered``), one step every ``status_delay_ms``; a share ``undelivered_rate`` ends ``undelivered`` with a 30xxx
code instead. With ``sender_mps`` a message leaves for ``sent`` only when its sender's queue lets it (queueing.py);
one still ``queued``/``accepted`` at its ValidityPeriod deadline ends ``failed`` there with 30001 instead.
Test-credential messages stay ``queued`` and never call back (Twilio's rule).

When the create carried a StatusCallback, every step after the first is POSTed there, form-encoded and signed
with X-Twilio-Signature using the account's auth token (also when the create used an API key, as Twilio does).
A callback that fails (connection error, timeout, 5xx) is retried once, like Twilio's default. Callbacks run
as their own tasks on timers, so the request that created the message never waits for them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping

import aiohttp
from pydantic import SecretStr

from smsdispatch.adapters.twilio.signature import SIGNATURE_HEADER, compute_signature
from smsdispatch.tools.simulator.config import SimulatorConfig
from smsdispatch.tools.simulator.errors import DELIVERY_ERRORS, QUEUE_EXPIRED_CODE
from smsdispatch.tools.simulator.formats import API_VERSION, raw_dlr_done_date
from smsdispatch.tools.simulator.queueing import QueueKey, SenderQueues
from smsdispatch.tools.simulator.store import Message, Step

logger = logging.getLogger(__name__)

_CALLBACK_BUDGET_S = 15.0
_UNDELIVERED_CODES = tuple(DELIVERY_ERRORS)


class Lifecycle:
    """Plans message timelines and delivers their status callbacks."""

    def __init__(self, config: SimulatorConfig, rng: random.Random, tokens: Mapping[str, SecretStr]) -> None:
        self._step_s = config.status_delay_ms / 1000
        self._retry_delay_s = config.callback_retry_delay_ms / 1000
        self._undelivered_rate = config.undelivered_rate
        self._rng = rng
        self._tokens = tokens
        self.queues = SenderQueues(config.sender_mps)
        self._session: aiohttp.ClientSession | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.callbacks_delivered = 0
        self.callbacks_failed = 0

    def plan(
        self,
        now_mono: float,
        *,
        via_service: bool,
        is_test: bool,
        queue: QueueKey | None = None,
        segments: int = 1,
        validity_s: float = 36_000,
    ) -> tuple[tuple[Step, ...], int | None]:
        """The steps a new message will take from ``now_mono``, and the error code of its last step.

        ``queue`` is the sender whose throughput the message waits for (see queueing.py); ``validity_s`` is its
        ValidityPeriod: if it cannot leave by then it fails at that moment, and takes no turn on the sender.
        """
        if is_test:
            return ((now_mono, "queued"),), None
        waiting = ("accepted", "queued") if via_service else ("queued",)
        steps = [(now_mono + i * self._step_s, status) for i, status in enumerate(waiting)]
        deadline = now_mono + validity_s
        ready = now_mono + len(waiting) * self._step_s
        sent_at = self.queues.release(queue or ("", ""), ready, segments, deadline)
        if sent_at is None:
            kept = [step for step in steps if step[0] < deadline]
            return (*kept, (deadline, "failed")), QUEUE_EXPIRED_CODE
        final, error_code = "delivered", None
        if self._undelivered_rate and self._rng.random() < self._undelivered_rate:
            final, error_code = "undelivered", self._rng.choice(_UNDELIVERED_CODES)
        return (*steps, (sent_at, "sent"), (sent_at + self._step_s, final)), error_code

    def follow(self, message: Message) -> None:
        """Schedule the callbacks of ``message`` (none without a StatusCallback or for test credentials)."""
        if message.status_callback is None or message.is_test:
            return
        loop = asyncio.get_running_loop()
        for index in range(1, len(message.steps)):
            key = self._next_timer
            self._next_timer += 1
            # Steps are in time.monotonic(); a millisecond of slack makes sure that a receiver fetching the
            # message on a callback already sees the status it was told about, whatever the loop's clock.
            delay = message.steps[index][0] - time.monotonic() + 0.001
            self._timers[key] = loop.call_later(max(delay, 0.0), self._fire, key, message, index)

    def _fire(self, key: int, message: Message, index: int) -> None:
        self._timers.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._deliver(message, index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def callback_params(self, message: Message, index: int) -> dict[str, str]:
        at, status = message.steps[index]
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if message.from_number is not None:
            params["From"] = message.from_number
        if message.service_sid is not None:
            params["MessagingServiceSid"] = message.service_sid
        if status in ("failed", "undelivered") and message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        if status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = raw_dlr_done_date(message.wall_time(at))
        return params

    async def _deliver(self, message: Message, index: int) -> None:
        url = message.status_callback
        assert url is not None  # follow() schedules only messages with a callback
        params = self.callback_params(message, index)
        token = self._tokens[message.account_sid].get_secret_value()
        headers = {
            SIGNATURE_HEADER: compute_signature(token, url, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        for attempt in (1, 2):
            if await self._post(url, params, headers):
                self.callbacks_delivered += 1
                return
            if attempt == 1:
                await asyncio.sleep(self._retry_delay_s)
        self.callbacks_failed += 1
        logger.info("status callback for %s (%s) failed twice; giving up", message.sid, params["MessageStatus"])

    async def _post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> bool:
        session = self._ensure_session()
        try:
            async with session.post(url, data=params, headers=headers) as response:
                await response.read()
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.debug("status callback attempt failed: %s", type(exc).__name__)
            return False

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_CALLBACK_BUDGET_S),
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session

    @property
    def pending(self) -> int:
        """Callbacks scheduled or in flight."""
        return len(self._timers) + len(self._tasks)

    async def close(self) -> None:
        """Stop: drop scheduled callbacks, cancel those in flight, close the HTTP session."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
