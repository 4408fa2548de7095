"""Example requests for the data routes, for the server's route x role matrix
(``tests/server/server_route_examples.py`` loads ``EXAMPLES`` from here)."""

from __future__ import annotations

from typing import Any

from server_route_examples import OBJECT, Builder, Ctx, Example


def _dataset(ctx: Ctx) -> str:
    """A fresh dataset version in the server's store; its ref."""
    from keel.data._records import NewVersion

    made = ctx.state.data.create_version(
        NewVersion(
            name=ctx.unique("ds"),
            digest=ctx.digest,
            kind="table",
            size=len(OBJECT),
            source_digest="src-" + ctx.unique(),
            objects=(ctx.digest,),
        )
    )
    return str(made.ref)


def _by_source(ctx: Ctx) -> Example:
    v = ctx.state.data.resolve(_dataset(ctx))
    params = {"name": v.name, "source_digest": v.source_digest}
    return Example("GET", "/api/v1/data/find-by-source", params=params)


def _contract(ctx: Ctx) -> Example:
    name = ctx.unique("contract")
    ctx.state.data.save_contract(name, "columns: {}")
    return Example("GET", "/api/v1/data/contracts", params={"name": name})


def _new_version(ctx: Ctx) -> dict[str, Any]:
    return {
        "name": ctx.unique("ds"),
        "digest": ctx.digest,
        "kind": "table",
        "size": len(OBJECT),
        "objects": [ctx.digest],
    }


EXAMPLES: dict[tuple[str, str], Builder] = {
    ("POST", "/api/v1/data/versions"): lambda ctx, c: Example(
        "POST", "/api/v1/data/versions", json=_new_version(ctx)
    ),
    ("GET", "/api/v1/data/resolve"): lambda ctx, c: Example(
        "GET", "/api/v1/data/resolve", params={"ref": _dataset(ctx)}
    ),
    ("GET", "/api/v1/data/find-by-source"): lambda ctx, c: _by_source(ctx),
    ("GET", "/api/v1/data/versions"): lambda ctx, c: Example("GET", "/api/v1/data/versions"),
    ("POST", "/api/v1/data/tags"): lambda ctx, c: Example(
        "POST", "/api/v1/data/tags", json={"ref": _dataset(ctx), "tag": "prod"}
    ),
    ("DELETE", "/api/v1/data/versions"): lambda ctx, c: Example(
        "DELETE", "/api/v1/data/versions", params={"ref": _dataset(ctx)}
    ),
    ("GET", "/api/v1/data/referenced-digests"): lambda ctx, c: Example(
        "GET", "/api/v1/data/referenced-digests"
    ),
    ("POST", "/api/v1/data/contracts"): lambda ctx, c: Example(
        "POST", "/api/v1/data/contracts", json={"name": ctx.unique("c"), "text": "columns: {}"}
    ),
    ("GET", "/api/v1/data/contracts"): lambda ctx, c: _contract(ctx),
}
