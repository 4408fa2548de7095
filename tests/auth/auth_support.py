"""Shared pieces of the auth tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass

from keel.auth import HashParams

# Cheap enough to create dozens of users per test; the default parameters are tested apart.
FAST = HashParams(time_cost=1, memory_cost_kib=8192, parallelism=1)
PASSWORD = "correct horse battery staple"
START_MS = 1_800_000_000_000


@dataclass
class Clock:
    """Epoch milliseconds that move only when the test says so."""

    ms: int = START_MS

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
