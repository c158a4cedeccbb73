"""What every long-running worker shares: a stop event that SIGTERM and Ctrl-C set."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def stop_on_signals(stop: threading.Event) -> None:
    """Set ``stop`` on SIGTERM (Kubernetes) and SIGINT (Ctrl-C) so loops finish their batch and exit."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python logs every reconnect attempt at WARNING/ERROR; the workers report those themselves.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    # httpx logs every request at INFO; the demo polls the API every 2 s.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class Backoff:
    """Retry delays: ``initial`` doubling up to ``cap``; ``reset()`` after a success."""

    def __init__(self, initial: float = 1.0, cap: float = 30.0, factor: float = 2.0) -> None:
        self.initial, self.cap, self.factor = initial, cap, factor
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial


def retry_until_stopped(
    action: Callable[[], T],
    stop: threading.Event,
    what: str,
    *,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    backoff: Backoff | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> T | None:
    """``action()``'s result once it succeeds; None if ``stop`` is set before it does.

    Why every worker uses this: a broker, store or database outage must stall
    the worker (offsets stay uncommitted, nothing is skipped) rather than
    crash it or drop the message. The first attempt is made even when
    ``stop`` is already set, so work done at shutdown (closing incidents)
    still gets its one chance to be delivered.
    """
    delays = backoff or Backoff(initial=0.5, cap=10.0)
    while True:
        try:
            return action()
        except retry_on as exc:
            if on_error is not None:
                on_error(exc)
            if stop.is_set():
                log.info("%s interrupted by stop; it will be retried on the next start", what)
                return None
            delay = delays.next_delay()
            log.error("%s failed (retry in %.1fs): %r", what, delay, exc)
            if stop.wait(delay):
                return None
