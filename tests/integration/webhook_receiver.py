"""A tenant's webhook endpoint for the integration tests: the demo's inbox, answering by the path's first segment:

* ``/ok/…`` answers 204;
* ``/flaky/…`` answers 500 to the first three attempts of each ``webhook-id``, then 204;
* ``/hang/…`` holds the request for ``hang_seconds`` (the worker's timeout cuts it short first);
* ``/switch/…`` answers 503 until :attr:`WebhookReceiver.switch_on` is set, then 204.
"""

from __future__ import annotations

import threading
from collections import Counter

from smsdispatch.tools.demo.webhooks import Received, WebhookInbox

Hit = Received


class WebhookReceiver(WebhookInbox):
    def __init__(self, hang_seconds: float = 30.0) -> None:
        self.switch_on = threading.Event()
        self._attempts: Counter[str] = Counter()
        self._counting = threading.Lock()
        self._hang_seconds = hang_seconds
        self._stopping = threading.Event()
        super().__init__(answer=self._by_path)

    def stop(self) -> None:
        self._stopping.set()  # hanging answers end now
        self.close()

    def _by_path(self, path: str, headers: dict[str, str]) -> int:
        kind = path.strip("/").split("/", 1)[0]
        if kind == "flaky":
            with self._counting:
                self._attempts[headers.get("webhook-id", "")] += 1
                return 500 if self._attempts[headers.get("webhook-id", "")] <= 3 else 204
        if kind == "hang":
            self._stopping.wait(self._hang_seconds)
            return 204
        if kind == "switch":
            return 204 if self.switch_on.is_set() else 503
        return 204
