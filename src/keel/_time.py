"""Time in one representation: integer milliseconds since the Unix epoch, UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """The current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def format_ms(ms: int | None) -> str:
    """Epoch milliseconds as ISO-8601 text for people, '' for None."""
    return "" if ms is None else to_datetime(ms).isoformat(timespec="seconds")
