"""Request rate limits per principal (or per address before sign-in): a fixed one-minute
window counted in this process.

With several workers each counts its own share, so the effective limit of N workers is up to
N times the setting (docs/server.md says so). Login attempts are limited separately, in the
database, by keel.auth, which holds across workers and machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from keel.errors import RateLimited

_WINDOW_S = 60.0


class RateLimiter:
    """``hit(key)`` counts one request and raises ``RateLimited`` past ``per_minute``."""

    def __init__(self, *, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def hit(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = self._clock()
        window = int(now // _WINDOW_S)
        with self._lock:
            if window != self._window:
                # A new window forgets the old one whole: memory stays bounded by the keys
                # seen in one minute.
                self._window = window
                self._counts = {}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count > self.per_minute:
            retry = (window + 1) * _WINDOW_S - now
            raise RateLimited(
                f"more than {self.per_minute} requests a minute; slow down",
                retry_after=max(1.0, retry),
            )
