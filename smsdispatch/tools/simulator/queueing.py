"""Per-sender queues: when a queued message leaves Twilio, given its sender's throughput and its ValidityPeriod.

Twilio queues what it accepts and releases it at the sender's rate, counted in segments (a US long code sends 1
segment/s; docs/reference/twilio.md, "Throughput"). ``SimulatorConfig.sender_mps`` gives every sender that rate;
unset, senders are unlimited and a message leaves as soon as its lifecycle says (the simulator's default).

Because a message's whole timeline is decided when it is accepted (store.py), a queue is just the time its sender
is next free: a message leaves at ``max(ready, next_free)`` and pushes ``next_free`` on by its segments / rate. A
message whose turn would come after its validity deadline never leaves: it takes no turn (Twilio drops it, so it
does not hold up the messages behind it) and fails at the deadline with 30001.
"""

from __future__ import annotations

# Twilio holds at most 10 hours of messages per sender; a number's create beyond that is refused with 21611.
SENDER_QUEUE_LIMIT_S = 36_000.0

QueueKey = tuple[str, str]  # (account SID, the sender the message leaves from: number, or service SID)


class SenderQueues:
    """The next free moment (time.monotonic()) of each sender, for a configured rate; no state when unlimited."""

    def __init__(self, sender_mps: float | None) -> None:
        self._seconds_per_segment = None if sender_mps is None else 1.0 / sender_mps
        self._next_free: dict[QueueKey, float] = {}

    @property
    def limited(self) -> bool:
        return self._seconds_per_segment is not None

    def backlog(self, key: QueueKey, now_mono: float) -> float:
        """Seconds of messages waiting ahead of a message created now on this sender."""
        return max(self._next_free.get(key, now_mono) - now_mono, 0.0)

    def release(self, key: QueueKey, ready_mono: float, segments: int, deadline_mono: float) -> float | None:
        """When a message ready to leave at ``ready_mono`` is sent, or None if that would be past its deadline.

        Only a message that is sent takes its turn on the sender.
        """
        spacing = self._seconds_per_segment
        if spacing is None:
            return ready_mono if ready_mono <= deadline_mono else None
        leaves = max(ready_mono, self._next_free.get(key, ready_mono))
        if leaves > deadline_mono:
            return None
        self._next_free[key] = leaves + max(segments, 1) * spacing
        return leaves
