"""Coalescing: work asked for many times in a burst runs once, at most once per interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Coalescer:
    """Runs `work(key)` soon after it is asked for, and at most once per `interval` for
    each key: every ask that comes while a run is waiting is served by that run."""

    def __init__(self, work: Callable[[str], None], *, interval: float = 1.0) -> None:
        self._work = work
        self._interval = interval
        self._lock = threading.Lock()
        self._waiting: set[str] = set()
        self._running = 0
        self._last: dict[str, float] = {}
        self._idle = threading.Condition(self._lock)

    def ask(self, key: str) -> None:
        """Make sure `work(key)` runs after this call, merged with other asks."""
        with self._lock:
            if key in self._waiting:
                return
            self._waiting.add(key)
            last = self._last.get(key)
            delay = 0.0 if last is None else max(0.0, last + self._interval - time.monotonic())
        timer = threading.Timer(delay, self._fire, args=(key,))
        timer.daemon = True
        timer.start()

    def _fire(self, key: str) -> None:
        with self._lock:
            self._waiting.discard(key)
            self._last[key] = time.monotonic()
            self._running += 1
        try:
            self._work(key)
        except Exception:  # a failed render must not stop later ones
            log.exception("coalesced work for %s failed", key)
        finally:
            with self._lock:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is waiting or running (for shutdown and tests)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._waiting or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True
