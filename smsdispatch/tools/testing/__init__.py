"""Test helpers we ship to our users, as structlog ships ``structlog.testing``.

Import the pieces you need: ``smsdispatch.tools.testing.postgres`` (a private PostgreSQL server for tests),
``smsdispatch.tools.simulator`` (the Twilio-compatible simulator) and the fakes here.
"""
