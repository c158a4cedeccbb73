"""What every long-running worker shares: a stop event that SIGTERM and Ctrl-C set."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


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
