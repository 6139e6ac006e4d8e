"""Running the worker in this process: Faust's ``Worker`` around the app, with a bounded stop, on uvloop, and
with the garbage collector tuned for a long-lived process (:data:`GC_THRESHOLDS`).

The CLI's ``worker`` verb builds the settings, the keyring and the app
(:func:`~smsdispatch.runtime.worker.build_worker`) and hands them here, so Faust's process machinery stays inside
the runtime like the rest of Faust.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from smsdispatch.runtime.app import StreamsApp

#: The collector's thresholds for the worker: a young collection per 20,000 net allocations instead of 700.
#: Nearly everything the hot path allocates is freed by reference counting, so collections mostly walk live
#: objects for nothing. Measured in a benchmark worker (benchmarks/dispatch_throughput.py, 5,000 requests and
#: the half-load phase, about 20 s of CPU): with Python's defaults the collector took 1.5 s of it, with pauses up
#: to 199 ms; with these and :func:`freeze_startup_objects`, 0.17 s, with pauses under 40 ms. Cyclic garbage
#: waits a little longer: a few megabytes at most.
GC_THRESHOLDS = (20_000, 50, 100)


def use_uvloop() -> bool:
    """Make every event loop created from now on a uvloop one (Faust's, and its consumer thread's), when uvloop is
    installed (it is a dependency everywhere but Windows); returns whether it is. Called before the app exists.

    Measured with benchmarks/dispatch_throughput.py, alternating runs: the worker's CPU per request 952 and 970 µs
    on uvloop against 1,056 and 1,404 µs on asyncio's own loop, whose Python-level scheduling and socket
    callbacks were a tenth of the worker's samples.
    """
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run_worker(streams: StreamsApp, *, loglevel: str, logging_config: Mapping[str, Any], stop_seconds: float) -> None:
    """Run the app until it is told to stop (SIGTERM, Ctrl-C); exits the process (Faust's ``Worker`` does)."""
    from faust.worker import Worker

    gc.set_threshold(*GC_THRESHOLDS)
    worker = bounded_stop_worker(Worker, stop_seconds)(
        streams.app,
        loglevel=loglevel,
        logging_config=dict(logging_config),
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()


def bounded_stop_worker(worker_class: type[Any], seconds: float, exit: Callable[[int], None] = os._exit) -> type[Any]:
    """Faust's Worker, with a watchdog armed by the first stop signal: if the process has not exited ``seconds``
    later (a shutdown stuck on a broker that is away, a send that never returns), it exits with status 1.
    Nothing is lost by that: offsets are committed only for finished records, so the rest is read again.
    Once started, it also freezes what survived startup (:func:`freeze_startup_objects`)."""

    class BoundedStopWorker(worker_class):  # type: ignore[misc]
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            freeze_startup_objects()

        def _schedule_shutdown(self, signal: Any) -> None:
            if not self._signal_stop_time:
                watchdog = threading.Timer(seconds, _give_up, args=(seconds, exit))
                watchdog.daemon = True
                watchdog.start()
            super()._schedule_shutdown(signal)

    return BoundedStopWorker


def freeze_startup_objects() -> None:
    """Move what survived startup (modules, the app, its services and tables) out of the collector's sight: they
    live as long as the process, and every full collection would walk them again (128,000 objects, 77 ms)."""
    gc.collect()
    gc.freeze()


def _give_up(seconds: float, exit: Callable[[int], None]) -> None:
    logging.getLogger("smsdispatch.worker").error(
        "the worker did not stop within %.0fs of the stop signal; exiting now, unfinished records stay uncommitted",
        seconds,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    exit(1)
