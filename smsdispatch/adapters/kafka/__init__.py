"""Kafka, as the project writes to it: an aiokafka producer that cannot lose track of a topic it writes, and that
knows which of its writes are still waiting, and for what.

:class:`TopicTrackingProducer` is what every producer of the project is (the worker's, through Faust, and the
client's); :class:`PendingWrites` is its record of unacknowledged writes, read by the worker's liveness checks.
"""

from smsdispatch.adapters.kafka._pending import PendingWrites, StuckWrites
from smsdispatch.adapters.kafka._producer import RefreshLimiter, TopicTrackingProducer

__all__ = ["PendingWrites", "RefreshLimiter", "StuckWrites", "TopicTrackingProducer"]
