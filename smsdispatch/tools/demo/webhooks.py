"""The demo's webhook receiver: an endpoint a tenant's webhooks reach, checked as a tenant would check them.

One tenant of the run (``acme``) is registered with a webhook URL pointing here and a signing secret. Every
POST is kept; :func:`check_webhooks` verifies each with the ``standardwebhooks`` package (the same few lines the
README gives tenants) and turns the result into summary lines and problems.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class WebhookInbox:
    """An HTTP endpoint on 127.0.0.1 (a thread) that answers 204 and keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"

    def wait(self, count: int, timeout: float) -> list[Received]:
        """What arrived, once ``count`` did or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.05)
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with inbox._lock:
                    inbox.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo prints its own summary

        return Handler


def check_webhooks(received: list[Received], secret: str, tenant_id: str) -> tuple[list[str], list[str]]:
    """Summary lines and problems for the webhooks ``tenant_id``'s endpoint received."""
    verified: list[dict[str, Any]] = []
    refused = 0
    for item in received:
        try:
            verified.append(Webhook(secret).verify(item.body, item.headers))
        except WebhookVerificationError:
            refused += 1
    kinds = sorted({str(payload.get("type")) for payload in verified})
    lines = [f"webhooks: {len(received)} received for {tenant_id}, {len(verified)} verified with standardwebhooks"]
    if verified:
        first = received[0]
        lines.append(f"  e.g. {first.headers.get('webhook-id')}: {', '.join(kinds)}; body {_excerpt(first.body)}")
    problems = []
    if not received:
        problems.append(f"no webhook reached {tenant_id}'s endpoint")
    if refused:
        problems.append(f"{refused} webhooks failed signature verification")
    return lines, problems


def _excerpt(body: bytes, limit: int = 90) -> str:
    text = json.dumps(json.loads(body)) if body else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
