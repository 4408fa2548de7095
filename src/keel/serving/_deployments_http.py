"""``HttpDeploymentStore``: a team server's deployments and their history, over HTTP.

The server's ``/api/v1/deployments`` routes (``keel.server.routes.deployments``) run the same
``Deployments`` checks (versions exist and are READY) on its own stores and record every
change under the signed-in user: the ``actor`` given here is ignored by the server, so a
history entry always names who really made the change. JSON shapes are defined here, once,
for both sides.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from keel._http import ServerBacked
from keel.errors import InvalidInput
from keel.serving._deployments import (
    Deployment,
    DeploymentChange,
    DeploymentSettings,
    DeploymentStore,
    Mode,
)

API = "/api/v1/deployments"


def deployment_from_wire(d: Mapping[str, Any]) -> Deployment:
    """A deployment from JSON (on the server the body is untrusted: the store validates it,
    and malformed input is ``InvalidInput``)."""
    try:
        settings = d.get("settings") or {}
        if not isinstance(settings, dict):
            raise InvalidInput("must be an object", field="settings")
        return Deployment(
            name=d["name"],
            model=d["model"],
            champion=d["champion"],
            challenger=d.get("challenger"),
            mode=d.get("mode", Mode.SINGLE),
            percent=d.get("percent", 0.0),
            sticky_key=d.get("sticky_key"),
            settings=DeploymentSettings.from_dict(settings),
            revision=int(d.get("revision", 0)),
            created_ms=int(d.get("created_ms", 0)),
            updated_ms=int(d.get("updated_ms", 0)),
            updated_by=str(d.get("updated_by", "")),
        )
    except KeyError as exc:
        raise InvalidInput(f"missing {exc.args[0]!r}", field="body") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed: {exc}", field="body") from exc


def change_from_wire(d: Mapping[str, Any]) -> DeploymentChange:
    return DeploymentChange(
        name=d["name"],
        revision=int(d["revision"]),
        actor=d["actor"],
        action=d["action"],
        changes={k: (v[0], v[1]) for k, v in d["changes"].items()},
        config=dict(d["config"]),
        created_ms=int(d["created_ms"]),
    )


def _segment(name: str) -> str:
    # Deployment names are [A-Za-z0-9._-] (checked on both sides); anything else is refused
    # here rather than sent as a path the router would read differently.
    from keel.monitoring._predlog import check_name

    return check_name(name)


class HttpDeploymentStore(ServerBacked, DeploymentStore):
    """The deployment store behind the Keel server at ``url`` (token: ``KEEL_TOKEN``)."""

    def create(self, deployment: Deployment, *, actor: str) -> Deployment:
        del actor  # the server records the signed-in user
        body = deployment.to_dict()
        got = self.http.call("POST", API, body=body, idempotent_create=True)
        return deployment_from_wire(got)

    def get(self, name: str) -> Deployment:
        return deployment_from_wire(self.http.call("GET", f"{API}/{_segment(name)}"))

    def list(self) -> builtins.list[Deployment]:
        return [deployment_from_wire(d) for d in self.http.call("GET", API)["deployments"]]

    def update(
        self, name: str, changes: Mapping[str, Any], *, actor: str, expected_revision: int | None
    ) -> Deployment:
        del actor
        sent = dict(changes)
        if isinstance(sent.get("settings"), DeploymentSettings):
            sent["settings"] = sent["settings"].to_dict()
        if "mode" in sent:
            sent["mode"] = str(sent["mode"])
        body = {"changes": sent, "expected_revision": expected_revision}
        got = self.http.call("PATCH", f"{API}/{_segment(name)}", body=body)
        return deployment_from_wire(got)

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        got = self.http.call("GET", f"{API}/{_segment(name)}/history")
        return [change_from_wire(c) for c in got["history"]]
