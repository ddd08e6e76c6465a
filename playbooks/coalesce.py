"""Coalescing: work asked for many times in a burst runs once, at most once per interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Coalescer:
    """Runs `work(key)` soon after it is asked for, never twice at once for a key, and
    starting at least `interval` after the key's previous run ended: every ask that comes
    while a run is waiting is served by it; an ask during a run gets one more run after it.
    (Measured from the end, so work slowed by Slack's Retry-After cannot pile up runs.)"""

    def __init__(self, work: Callable[[str], None], *, interval: float = 1.0) -> None:
        self._work = work
        self._interval = interval
        self._lock = threading.Lock()
        self._waiting: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()  # asked while running
        self._last: dict[str, float] = {}  # when the key's last run ended
        self._idle = threading.Condition(self._lock)

    def ask(self, key: str) -> None:
        """Make sure `work(key)` runs after this call, merged with other asks."""
        with self._lock:
            if key in self._waiting:
                return
            if key in self._running:
                self._again.add(key)
                return
            self._schedule(key)

    def _schedule(self, key: str) -> None:
        """Start the key's timer (the lock is held)."""
        self._waiting.add(key)
        last = self._last.get(key)
        delay = 0.0 if last is None else max(0.0, last + self._interval - time.monotonic())
        timer = threading.Timer(delay, self._fire, args=(key,))
        timer.daemon = True
        timer.start()

    def _fire(self, key: str) -> None:
        with self._lock:
            self._waiting.discard(key)
            self._running.add(key)
        try:
            self._work(key)
        except Exception:  # a failed render must not stop later ones
            log.exception("coalesced work for %s failed", key)
        finally:
            with self._lock:
                self._running.discard(key)
                self._last[key] = time.monotonic()
                if key in self._again:
                    self._again.discard(key)
                    self._schedule(key)
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
