"""smsdispatch: Kafka-driven, multi-tenant SMS dispatch through Twilio.

Producers publish ``sms.requested``; the worker sends each request through the tenant's own Twilio account
and emits exactly one outcome, ``sms.dispatched`` or ``sms.failed``. See docs/contract.md for the public contract.
"""

__version__ = "0.1.0"
