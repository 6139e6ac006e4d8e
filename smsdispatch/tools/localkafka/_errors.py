"""The errors of the local broker: each message is one sentence a person can act on."""

from __future__ import annotations


class LocalKafkaError(Exception):
    """The local Kafka broker could not be fetched, started, probed or stopped."""


class MissingToolError(LocalKafkaError):
    """Java 17+ or Maven is missing: the message says what to install."""
