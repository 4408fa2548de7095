"""Hot swap: a background task polls where each endpoint's versions come from (an alias, or a
stored deployment's revision) every few seconds; on a change it loads the new versions in a
thread, off the event loop, and installs them with ``Endpoint.apply``. A version that fails to
load (or takes another signature) leaves the old one serving, shows in the endpoint's
readiness detail and in ``keel_model_load_failures_total``, and is not retried until the
target moves again. Changed batching or limit settings of a deployment build new hosts
that take over in one step; the old ones stop once idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from keel.serving._deployments import Deployment

if TYPE_CHECKING:
    from keel.serving._endpoint import Endpoint
    from keel.serving._host import Predictor

log = logging.getLogger("keel.serving")


@dataclass(frozen=True, slots=True)
class Target:
    """What an endpoint should serve: a model's champion (and challenger) version numbers,
    and the deployment record they come from, if any."""

    model: str
    champion: int
    challenger: int | None = None
    deployment: Deployment | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        revision = self.deployment.revision if self.deployment is not None else None
        challenger = str(self.challenger) if self.challenger is not None else None
        return (self.model, str(self.champion), challenger, revision)


Source = Callable[[], Target]  # blocking (a database read): run in a thread
Loader = Callable[[str, int], "Predictor"]


def load_version(model: str, version: int) -> Predictor:
    import keel.models

    return keel.models.load(f"models:/{model}/{version}")


def alias_source(uri: str) -> Source:
    """Follow ``uri`` (``churn@champion``): its current version is the champion."""

    def read() -> Target:
        import keel.models

        version = keel.models.resolve_uri(uri)
        return Target(version.name, version.version)

    return read


def deployment_source(name: str, *, uri: str | None = None) -> Source:
    """Follow the stored deployment ``name``."""

    def read() -> Target:
        from keel.serving._deployments import open_deployments

        deployments = open_deployments(uri)
        try:
            dep = deployments.get(name)
        finally:
            deployments.store.close()
            deployments.registry.close()
        return Target(dep.model, dep.champion, dep.challenger, dep)

    return read


def current_key(endpoint: Endpoint) -> tuple[Any, ...]:
    dep = endpoint.deployment
    challenger = endpoint.challenger
    return (
        endpoint.champion.name,
        endpoint.champion.version,
        challenger.version if challenger is not None else None,
        dep.revision if dep is not None else None,
    )


async def check(endpoint: Endpoint, source: Source, *, load: Loader = load_version) -> bool:
    """Bring ``endpoint`` to its source's target; True if something was installed."""
    target = await asyncio.to_thread(source)
    if target.key == current_key(endpoint) or target.key == endpoint.failed_key:
        return False
    if target.model != endpoint.champion.name:
        endpoint.load_failed(
            target.key,
            version=str(target.champion),
            error=f"the deployment now names model {target.model!r}; restart to serve it",
        )
        return False
    dep = endpoint.deployment
    if (
        target.deployment is not None
        and dep is not None
        and target.deployment.settings != dep.settings
    ):
        return await _rebuild(endpoint, target, load=load)
    champion = challenger = None
    version = target.champion
    try:
        if str(target.champion) != endpoint.champion.version:
            model = await asyncio.to_thread(load, target.model, target.champion)
            champion = (model, str(target.champion))
        current = endpoint.challenger
        if target.challenger is not None and (
            current is None or current.version != str(target.challenger)
        ):
            version = target.challenger
            model = await asyncio.to_thread(load, target.model, target.challenger)
            challenger = (model, str(target.challenger))
        await endpoint.apply(
            deployment=target.deployment,
            champion=champion,
            challenger=challenger,
            drop_challenger=target.challenger is None,
        )
    except Exception as exc:  # noqa: BLE001 - the old version keeps serving; reported
        endpoint.load_failed(target.key, version=str(version), error=f"v{version}: {exc}")
        return False
    log.info("endpoint %s now serves %s", endpoint.name, endpoint.ref)
    return True


async def _rebuild(endpoint: Endpoint, target: Target, *, load: Loader) -> bool:
    """New batching settings: new hosts (reusing a loaded model whose version is unchanged)."""
    from keel.serving._host import ModelHost

    assert target.deployment is not None
    old = endpoint.champion.settings
    settings = replace(
        target.deployment.settings.serving_settings(),
        allow_extra_columns=old.allow_extra_columns,
        retry_after_s=old.retry_after_s,
    )
    current = {endpoint.champion.version: endpoint.champion.model}
    if endpoint.challenger is not None:
        current[endpoint.challenger.version] = endpoint.challenger.model
    hosts: list[ModelHost | None] = []
    version = target.champion
    try:
        for number in (target.champion, target.challenger):
            if number is None:
                hosts.append(None)
                continue
            version = number
            model = current.get(str(number))
            if model is None:
                model = await asyncio.to_thread(load, target.model, number)
            hosts.append(ModelHost(target.model, model, version=str(number), settings=settings))
        assert hosts[0] is not None
        await endpoint.replace_hosts(
            deployment=target.deployment, champion=hosts[0], challenger=hosts[1]
        )
    except Exception as exc:  # noqa: BLE001 - the old hosts keep serving; reported
        endpoint.load_failed(target.key, version=str(version), error=f"v{version}: {exc}")
        return False
    log.info("endpoint %s now serves %s with new settings", endpoint.name, endpoint.ref)
    return True


async def poll(
    sources: Mapping[str, tuple[Endpoint, Source]],
    *,
    interval_s: float,
    load: Loader = load_version,
) -> None:
    """Check every endpoint every ``interval_s`` until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        for name, (endpoint, source) in sources.items():
            try:
                await check(endpoint, source, load=load)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store may be briefly down: keep serving, try again next round.
                log.warning("could not check %s for a new version", name, exc_info=True)
