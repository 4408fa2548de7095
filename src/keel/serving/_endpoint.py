"""``Endpoint``: what one served name answers with — a single model, or a deployment's champion
and challenger with its routing (``single``, ``shadow``, ``canary``).

* Canary: ``route`` picks the role per request from its route key (the ``keel-route-key``
  header, else the value of the deployment's ``sticky_key`` column in the request's first
  row, else a random draw); the answer names the version that computed it.
* Shadow: the champion answers; afterwards a copy of the input goes to the challenger through
  a bounded queue served by a few tasks of its own (the challenger has its own batcher and
  worker thread), so its failures or slowness never reach the champion's answer. A full
  queue drops the copy and counts it.
* Hot swap: ``apply`` installs newly loaded versions (``_reload.py`` loads them); the
  deployment record and the hosts are replaced as one tuple, so a request sees one
  consistent configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from keel.errors import InvalidInput
from keel.serving._app_http import classify
from keel.serving._deployments import Deployment, Mode, Role
from keel.serving._host import ModelHost, Predictor
from keel.serving._metrics import ServingMetrics
from keel.serving._payload import Inputs
from keel.serving._record import PredictionHook, PredictionRecord
from keel.serving._routing import plan

log = logging.getLogger("keel.serving")

ROUTE_KEY_HEADER = "keel-route-key"
_MAX_KEY = 256
_WARN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A request's outputs, the version that computed them, and in which role."""

    outputs: np.ndarray
    version: str
    role: Role
    host: ModelHost


@dataclass(frozen=True, slots=True)
class _State:
    deployment: Deployment | None
    champion: ModelHost
    challenger: ModelHost | None


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return float("nan")


class Endpoint:
    """One served name. ``deployment=None`` serves ``champion`` alone (``keel serve MODEL``).
    ``on_prediction`` (the deployment's prediction log writer) gets every answered request,
    the champion's and the challenger's, each with its role."""

    def __init__(
        self,
        name: str,
        champion: ModelHost,
        *,
        challenger: ModelHost | None = None,
        deployment: Deployment | None = None,
        on_prediction: PredictionHook | None = None,
        shadow_queue: int = 256,
        shadow_tasks: int = 4,
    ) -> None:
        if shadow_queue < 1 or shadow_tasks < 1:
            raise InvalidInput("must be at least 1", field="shadow_queue")
        self.name = name
        self._state = _State(deployment, champion, challenger)
        self._hosts: list[ModelHost] = [champion] + ([challenger] if challenger else [])
        self.on_prediction = on_prediction
        self.load_error: str | None = None
        self.failed_key: Any = None  # the target that failed to load (not retried until moved)
        self.metrics = ServingMetrics()
        self._shadow_size, self._shadow_tasks = shadow_queue, shadow_tasks
        self._shadow: asyncio.Queue[PredictionRecord] | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self.shadow_dropped = 0
        self.shadow_errors = 0
        self._last_warning = -float("inf")

    # -- what the routes read ---------------------------------------------------------------
    @property
    def deployment(self) -> Deployment | None:
        return self._state.deployment

    @property
    def champion(self) -> ModelHost:
        return self._state.champion

    @property
    def challenger(self) -> ModelHost | None:
        return self._state.challenger

    @property
    def signature(self) -> Any:
        return self.champion.signature

    @property
    def ref(self) -> str:
        return self.champion.ref

    @property
    def running(self) -> bool:
        state = self._state
        hosts = [state.champion] + ([state.challenger] if state.challenger else [])
        return all(h.batcher.running for h in hosts)

    def attach(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics
        for host in self._hosts:
            host.attach(metrics)
        self._report_versions()

    def _report_versions(self) -> None:
        state = self._state
        gauge = self.metrics.served_version
        gauge.labels(self.name, state.champion.name, "champion").set(
            _number(state.champion.version)
        )
        challenger = state.challenger.version if state.challenger else "nan"
        gauge.labels(self.name, state.champion.name, "challenger").set(_number(challenger))

    def detail(self) -> dict[str, Any]:
        """The readiness detail: what is served, and the last load failure if any."""
        state = self._state
        out: dict[str, Any] = {
            "model": state.champion.name,
            "champion": state.champion.version,
            "challenger": state.challenger.version if state.challenger else None,
            "ready": self.running,
            "load_error": self.load_error,
        }
        if state.deployment is not None:
            dep = state.deployment
            out |= {"mode": str(dep.mode), "percent": dep.percent, "revision": dep.revision}
        if self.shadow_dropped or self.shadow_errors:
            out |= {"shadow_dropped": self.shadow_dropped, "shadow_errors": self.shadow_errors}
        return out

    # -- answering ----------------------------------------------------------------------------
    def route_key(self, header: str | None, inputs: Inputs) -> str | None:
        """The request's sticky key: the ``keel-route-key`` header, else the value of the
        deployment's ``sticky_key`` column in the first row."""
        if header:
            return header[:_MAX_KEY]
        dep = self.deployment
        if dep is None or dep.sticky_key is None or inputs.columns is None:
            return None
        column = inputs.columns.get(dep.sticky_key)
        if column is None or len(column) == 0:
            return None
        value = column[0]
        return str(value.item() if hasattr(value, "item") else value)[:_MAX_KEY]

    def pick(self, key: str | None) -> tuple[ModelHost, Role]:
        """The host that answers a request with route key ``key``, and in which role."""
        state = self._state  # one consistent configuration for the whole request
        if (
            state.deployment is not None
            and state.challenger is not None
            and plan(state.deployment, key).answer is Role.CHALLENGER
        ):
            return state.challenger, Role.CHALLENGER
        return state.champion, Role.CHAMPION

    async def answer(self, inputs: Inputs, key: str | None) -> Answer:
        host, role = self.pick(key)
        outputs, version = await host.predict_versioned(inputs)
        return Answer(outputs, version, role, host)

    def shadows(self) -> bool:
        state = self._state
        return (
            state.deployment is not None
            and state.deployment.mode is Mode.SHADOW
            and state.challenger is not None
        )

    def send_to_shadow(self, record: PredictionRecord) -> None:
        """Queue a copy of an answered request for the challenger; drop it when full."""
        if self._shadow is None:
            return
        try:
            self._shadow.put_nowait(record)
        except asyncio.QueueFull:
            self.shadow_dropped += 1
            self.metrics.shadow_dropped.labels(self.name).inc()

    async def _shadow_loop(self) -> None:
        assert self._shadow is not None
        while True:
            record = await self._shadow.get()
            try:
                await self._shadow_one(record)
            finally:
                self._shadow.task_done()

    async def _shadow_one(self, record: PredictionRecord) -> None:
        challenger = self.challenger
        if challenger is None or record.inputs is None:
            return
        started = time.perf_counter()
        try:
            outputs, version = await challenger.predict_versioned(record.inputs)
        except Exception as exc:  # noqa: BLE001 - counted and logged; never reaches a client
            self.shadow_errors += 1
            self.metrics.shadow_errors.labels(self.name).inc()
            now = time.monotonic()
            if now - self._last_warning >= _WARN_EVERY_S:
                self._last_warning = now
                log.warning(
                    "shadow %s of %s failed (%d so far): %s",
                    challenger.ref,
                    self.name,
                    self.shadow_errors,
                    exc,
                )
            status = classify(exc)[0]
            # The challenger's error rate is part of the comparison: its failures are logged.
            self._log_shadow(
                record,
                challenger=challenger,
                version=challenger.version,
                outputs=None,
                started=started,
                status=status,
                keep_inputs=status != 503,
            )
            return
        self._log_shadow(
            record, challenger=challenger, version=version, outputs=outputs, started=started
        )

    def _log_shadow(
        self,
        record: PredictionRecord,
        *,
        challenger: ModelHost,
        version: str,
        outputs: np.ndarray | None,
        started: float,
        status: int = 200,
        keep_inputs: bool = True,
    ) -> None:
        hook = self.on_prediction
        if hook is None:
            return
        shadow = replace(
            record,
            model=challenger.name,
            version=version,
            inputs=record.inputs if keep_inputs else None,
            outputs=outputs,
            latency_ms=(time.perf_counter() - started) * 1000,
            timestamp_ms=int(time.time() * 1000),
            role=str(Role.CHALLENGER),
            non_finite=(),
            status=status,
        )
        try:
            hook(shadow)
        except Exception:
            log.exception("on_prediction hook failed for shadow of %s", record.request_id)

    # -- lifecycle and hot swap ------------------------------------------------------------
    async def start(self) -> None:
        for host in self._hosts:
            await host.start()
        if self._shadow is None:
            self._shadow = asyncio.Queue(maxsize=self._shadow_size)
            loop = asyncio.get_running_loop()
            self._consumers = [
                loop.create_task(self._shadow_loop()) for _ in range(self._shadow_tasks)
            ]

    async def stop(self, *, drain_s: float = 5.0) -> None:
        """Let queued shadow copies finish (up to ``drain_s``), then stop every host."""
        if self._shadow is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._shadow.join(), drain_s)
        for task in self._consumers:
            task.cancel()
        for task in self._consumers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._consumers, self._shadow = [], None
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*(h.stop() for h in self._hosts))

    async def apply(
        self,
        *,
        deployment: Deployment | None,
        champion: tuple[Predictor, str] | None,
        challenger: tuple[Predictor, str] | None,
        drop_challenger: bool = False,
    ) -> None:
        """Install a new configuration: ``champion``/``challenger`` are newly loaded
        ``(model, version)`` pairs (None keeps the current one). Signatures are checked
        before anything changes, so a refused swap leaves the endpoint as it was."""
        state = self._state
        for pair, role in ((champion, "champion"), (challenger, "challenger")):
            if pair is not None and pair[0].signature != state.champion.signature:
                raise InvalidInput(
                    f"{state.champion.name} v{pair[1]} takes another signature than the one "
                    "served; restart the server to serve it",
                    field=role,
                )
        if champion is not None:
            state.champion.swap(champion[0], version=champion[1])
            self.metrics.swaps.labels(self.name, "champion").inc()
        new_challenger = None if drop_challenger else state.challenger
        if challenger is not None:
            if new_challenger is not None:
                new_challenger.swap(challenger[0], version=challenger[1])
            else:
                new_challenger = ModelHost(
                    state.champion.name,
                    challenger[0],
                    version=challenger[1],
                    settings=state.champion.settings,
                )
                new_challenger.attach(self.metrics)
                await new_challenger.start()
                self._hosts.append(new_challenger)
            self.metrics.swaps.labels(self.name, "challenger").inc()
        self._state = _State(
            deployment if deployment is not None else state.deployment,
            state.champion,
            new_challenger,
        )
        self.load_error, self.failed_key = None, None
        self._report_versions()
        if state.challenger is not None and new_challenger is None:
            self._retire_later(state.challenger)  # its queued requests still get answers

    def _retire_later(self, host: ModelHost) -> None:
        task = asyncio.get_running_loop().create_task(self._retire(host))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def replace_hosts(
        self, *, deployment: Deployment, champion: ModelHost, challenger: ModelHost | None
    ) -> None:
        """Serve new hosts (new batching settings): they start, take over in one step, and
        the old ones stop once their queued and running requests are answered."""
        state = self._state
        for host in (champion, challenger):
            if host is not None and host.signature != state.champion.signature:
                raise InvalidInput(
                    f"{host.ref} takes another signature than the one served; restart the "
                    "server to serve it",
                    field="champion" if host is champion else "challenger",
                )
        for host in (champion, challenger):
            if host is not None:
                host.attach(self.metrics)
                await host.start()
                self._hosts.append(host)
        old = [state.champion] + ([state.challenger] if state.challenger else [])
        self._state = _State(deployment, champion, challenger)
        self.load_error, self.failed_key = None, None
        self.metrics.swaps.labels(self.name, "champion").inc()
        self._report_versions()
        for host in old:
            self._retire_later(host)

    async def _retire(self, host: ModelHost) -> None:
        # No new request reaches ``host`` (the state no longer names it); let it finish.
        while not host.batcher.idle:
            await asyncio.sleep(0.05)
        await host.stop()
        if host in self._hosts:
            self._hosts.remove(host)

    def load_failed(self, key: Any, *, version: str, error: str) -> None:
        self.load_error, self.failed_key = error, key
        self.metrics.load_failures.labels(self.name, self.champion.name, version).inc()
        log.error("endpoint %s: could not load %s; still serving %s", self.name, error, self.ref)


def as_endpoints(hosts: Mapping[str, ModelHost | Endpoint]) -> dict[str, Endpoint]:
    """Wrap plain hosts as single-model endpoints."""
    return {name: h if isinstance(h, Endpoint) else Endpoint(name, h) for name, h in hosts.items()}
