"""Example requests for the model registry, release and deployment routes, for the route x
role matrix (``server_route_examples.py`` merges ``EXAMPLES`` from here)."""

from __future__ import annotations

from typing import Any

from server_route_examples import OBJECT, Builder, Ctx, Example

M = "/api/v1/models"
D = "/api/v1/deployments"


def _model(ctx: Ctx) -> str:
    """A fresh model with one READY version (its file: the matrix project's object)."""
    from keel.models import ModelFile, NewModelVersion

    registry = ctx.state.models.registry
    name = ctx.unique("model")
    pending = registry.create_version(NewModelVersion(name=name, flavor="skops"))
    registry.complete_version(
        name, pending.version, files=[ModelFile("model.skops", ctx.digest, len(OBJECT))]
    )
    return name


def _pending(ctx: Ctx) -> dict[str, Any]:
    from keel.models import NewModelVersion

    name = ctx.unique("model")
    ctx.state.models.registry.create_version(NewModelVersion(name=name, flavor="skops"))
    files = [{"path": "model.skops", "digest": ctx.digest, "size": len(OBJECT)}]
    return {"name": name, "version": 1, "files": files}


def _decision(ctx: Ctx, name: str) -> dict[str, Any]:
    from keel.models._release_records import new_id

    return {
        "id": new_id(),
        "name": name,
        "version": 1,
        "alias": "champion",
        "action": "check",
        "passed": True,
        "actor": "matrix",
        "gates": [],
    }


def _stored_decision(ctx: Ctx) -> str:
    from keel.models._release_http import decision_from_wire

    decision = decision_from_wire(_decision(ctx, _model(ctx)))
    return ctx.state.releases.save_decision(decision).id


def _aliased(ctx: Ctx) -> dict[str, str]:
    name = _model(ctx)
    ctx.state.models.registry.set_alias(name, "champion", 1)
    return {"name": name, "alias": "champion"}


def _evaluation(ctx: Ctx) -> dict[str, Any]:
    from keel.models._release_records import new_id

    return {
        "id": new_id(),
        "name": _model(ctx),
        "version": 1,
        "dataset": "churn@v1",
        "dataset_digest": None,
        "target": "y",
        "task": "classification",
        "rows": 3,
        "metrics": {"accuracy": 1.0},
    }


def _deployment(ctx: Ctx) -> str:
    from keel.serving._deployments import Deployment

    name = ctx.unique("dep")
    ctx.state.deployments.create(Deployment(name=name, model=_model(ctx), champion=1))
    return name


EXAMPLES: dict[tuple[str, str], Builder] = {
    ("GET", M): lambda ctx, c: Example("GET", M),
    ("POST", M): lambda ctx, c: Example("POST", M, json={"name": ctx.unique("model")}),
    ("GET", f"{M}/model"): lambda ctx, c: Example(
        "GET", f"{M}/model", params={"name": _model(ctx)}
    ),
    ("PATCH", f"{M}/model"): lambda ctx, c: Example(
        "PATCH", f"{M}/model", json={"name": _model(ctx), "tags": {"team": "a"}}
    ),
    ("POST", f"{M}/versions"): lambda ctx, c: Example(
        "POST", f"{M}/versions", json={"name": ctx.unique("model"), "flavor": "skops"}
    ),
    ("POST", f"{M}/versions/complete"): lambda ctx, c: Example(
        "POST", f"{M}/versions/complete", json=_pending(ctx)
    ),
    ("POST", f"{M}/versions/search"): lambda ctx, c: Example(
        "POST", f"{M}/versions/search", json={"name": _model(ctx)}
    ),
    ("GET", f"{M}/version"): lambda ctx, c: Example(
        "GET", f"{M}/version", params={"name": _model(ctx), "version": 1}
    ),
    ("PATCH", f"{M}/version"): lambda ctx, c: Example(
        "PATCH", f"{M}/version", json={"name": _model(ctx), "version": 1, "description": "d"}
    ),
    ("POST", f"{M}/trust"): lambda ctx, c: Example(
        "POST", f"{M}/trust", json={"name": _model(ctx), "version": 1, "reason": "reviewed"}
    ),
    ("GET", f"{M}/referenced-digests"): lambda ctx, c: Example("GET", f"{M}/referenced-digests"),
    ("GET", f"{M}/lineage"): lambda ctx, c: Example(
        "GET", f"{M}/lineage", params={"uri": f"models:/{_model(ctx)}/1"}
    ),
    ("PUT", f"{M}/aliases"): lambda ctx, c: Example(
        "PUT", f"{M}/aliases", json={"name": _model(ctx), "alias": "champion", "version": 1}
    ),
    ("DELETE", f"{M}/aliases"): lambda ctx, c: Example(
        "DELETE", f"{M}/aliases", params=_aliased(ctx)
    ),
    ("GET", f"{M}/aliases"): lambda ctx, c: Example("GET", f"{M}/aliases", params=_aliased(ctx)),
    ("POST", f"{M}/decisions"): lambda ctx, c: Example(
        "POST", f"{M}/decisions", json=_decision(ctx, _model(ctx))
    ),
    ("POST", f"{M}/promote"): lambda ctx, c: Example(
        "POST",
        f"{M}/promote",
        json={"name": _model(ctx), "version": 1, "gates": {"champion": {"max_size_mb": 100}}},
    ),
    ("POST", f"{M}/decisions/moved"): lambda ctx, c: Example(
        "POST", f"{M}/decisions/moved", json={"id": _stored_decision(ctx)}
    ),
    ("GET", f"{M}/decisions"): lambda ctx, c: Example(
        "GET", f"{M}/decisions", params={"name": _model(ctx)}
    ),
    ("POST", f"{M}/approvals"): lambda ctx, c: Example(
        "POST", f"{M}/approvals", json={"name": _model(ctx), "version": 1}
    ),
    ("GET", f"{M}/approvals"): lambda ctx, c: Example(
        "GET", f"{M}/approvals", params={"name": _model(ctx), "version": 1}
    ),
    ("POST", f"{M}/evaluations"): lambda ctx, c: Example(
        "POST", f"{M}/evaluations", json=_evaluation(ctx)
    ),
    ("GET", f"{M}/evaluations"): lambda ctx, c: Example(
        "GET", f"{M}/evaluations", params={"name": _model(ctx)}
    ),
    ("PUT", f"{M}/cards"): lambda ctx, c: Example(
        "PUT", f"{M}/cards", json={"name": _model(ctx), "version": 1, "fields": {"owner": "ml"}}
    ),
    ("GET", f"{M}/cards"): lambda ctx, c: Example(
        "GET", f"{M}/cards", params={"name": _model(ctx), "version": 1}
    ),
    ("GET", D): lambda ctx, c: Example("GET", D),
    ("POST", D): lambda ctx, c: Example(
        "POST", D, json={"name": ctx.unique("dep"), "model": _model(ctx), "champion": 1}
    ),
    ("GET", f"{D}/{{name}}"): lambda ctx, c: Example("GET", f"{D}/{_deployment(ctx)}"),
    ("PATCH", f"{D}/{{name}}"): lambda ctx, c: Example(
        "PATCH",
        f"{D}/{_deployment(ctx)}",
        json={"changes": {"settings": {"max_batch_size": 16}}},
    ),
    ("GET", f"{D}/{{name}}/history"): lambda ctx, c: Example(
        "GET", f"{D}/{_deployment(ctx)}/history"
    ),
}
