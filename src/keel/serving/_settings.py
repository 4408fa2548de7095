"""Limits and batching settings of the inference app (one set per app, shared by its models)."""

from __future__ import annotations

from dataclasses import dataclass

from keel.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """``max_batch_size``: rows one coalesced predict call gathers (a bigger request runs alone);
    ``max_latency_ms``: how long the first request of a batch waits for company;
    ``max_queue``: requests waiting per model before new ones get 503 + ``Retry-After``;
    ``timeout_s``: a predict call longer than this answers 504 and its thread is abandoned;
    ``max_rows`` (413 past it) and ``max_body_bytes`` (413) bound one request;
    ``allow_extra_columns``: drop unknown columns instead of answering 422."""

    max_batch_size: int = 32
    max_latency_ms: float = 2.0
    max_queue: int = 1024
    timeout_s: float = 10.0
    max_rows: int = 10_000
    max_body_bytes: int = 32 * 1024 * 1024
    allow_extra_columns: bool = False
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        checks = {
            "max_batch_size": self.max_batch_size >= 1,
            "max_latency_ms": self.max_latency_ms >= 0,
            "max_queue": self.max_queue >= 1,
            "timeout_s": self.timeout_s > 0,
            "max_rows": self.max_rows >= 1,
            "max_body_bytes": self.max_body_bytes >= 1024,
            "retry_after_s": self.retry_after_s >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise InvalidInput(f"out of range: {getattr(self, name)!r}", field=name)
