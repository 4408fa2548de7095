"""Prometheus metrics of one serving app, on its own ``CollectorRegistry`` (two apps in one
process, as in the tests or a future multi-deployment host, never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ServingMetrics:
    """Counters, histograms and gauges labelled by model name and version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")
        self.requests = Counter(
            "keel_serving_requests",
            "Prediction requests answered, by route and HTTP status.",
            (*labels, "route", "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            "keel_serving_errors",
            "Prediction requests that failed, by reason "
            "(invalid_input, malformed, too_large, overloaded, timeout, model_error).",
            (*labels, "reason"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "keel_serving_request_latency_seconds",
            "Time from reading a prediction request to its answer.",
            (*labels, "route"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predict_latency = Histogram(
            "keel_serving_predict_latency_seconds",
            "Time of one (batched) predict call in the worker thread.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "keel_serving_batch_rows",
            "Rows per predict call after micro-batching.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "keel_serving_batch_requests",
            "Requests coalesced into one predict call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "keel_serving_queue_depth",
            "Requests waiting for the predict worker.",
            labels,
            registry=self.registry,
        )
        self.worker_restarts = Counter(
            "keel_serving_worker_restarts",
            "Predict threads abandoned after a timeout and replaced by a fresh one.",
            labels,
            registry=self.registry,
        )
        self.hook_errors = Counter(
            "keel_serving_hook_errors",
            "on_prediction hook calls that raised (the answer was already sent).",
            labels,
            registry=self.registry,
        )

        # Deployments: what is served, what failed to load, what the shadow dropped.
        self.served_version = Gauge(
            "keel_serving_served_version",
            "The version number each role of an endpoint is serving now.",
            ("endpoint", "model", "role"),
            registry=self.registry,
        )
        self.load_failures = Counter(
            "keel_model_load_failures",
            "New versions that failed to load; the previous one kept serving.",
            ("endpoint", "model", "version"),
            registry=self.registry,
        )
        self.swaps = Counter(
            "keel_serving_model_swaps",
            "Hot swaps: a newly loaded version took over a role.",
            ("endpoint", "role"),
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "keel_serving_shadow_dropped",
            "Shadow copies dropped because the challenger's queue was full.",
            ("endpoint",),
            registry=self.registry,
        )
        self.shadow_errors = Counter(
            "keel_serving_shadow_errors",
            "Shadow predictions that failed (the champion's answer was unaffected).",
            ("endpoint",),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
