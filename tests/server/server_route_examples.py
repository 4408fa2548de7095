"""A minimal valid request for every route, for the route x role matrix and the fuzz set-up.

``EXAMPLES`` maps ``(METHOD, path template)`` to a builder ``(ctx, caller) -> Example``. The
builder is called once per caller, so a call that changes state makes a fresh target each
time (a new user to disable, a new token to revoke). A route without an example fails
``test_route_matrix``.

Routes of other packages add theirs in ``tests/server/remote/remote_route_examples.py`` (an
``EXAMPLES`` dict of the same shape), loaded from there when the file exists.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server_support import PROJECT, strong_password


@dataclass
class Ctx:
    """What the builders may use: the open stores, and the project the matrix grants roles on
    (with one run in it)."""

    state: Any
    project: str = PROJECT
    run_id: str = ""
    digest: str = ""
    passwords: dict[str, str] = field(default_factory=dict)  # username -> current password

    def unique(self, prefix: str = "x") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def new_user(self) -> str:
        name = self.unique("user")
        self.state.auth.create_user(name, strong_password())
        return name

    def new_token_id(self, username: str) -> int:
        """A fresh token of ``username`` (of a new user when the caller has no account)."""
        from keel.auth import Role

        if username not in self.passwords:
            username = self.new_user()
        _, info = self.state.auth.create_token(username, name=self.unique("tok"), role=Role.VIEWER)
        return int(info.id)

    def new_run(self) -> str:
        return str(self.state.tracking.create_run(project=self.project).id)

    def setup(self) -> Ctx:
        """One run in the project with one stored file (what the read examples read)."""
        from keel.tracking._records import ArtifactFile

        self.run_id = self.new_run()
        ref = self.state.content.put_bytes(OBJECT)
        self.digest = ref.digest
        self.state.tracking.record_artifacts(
            self.run_id, [ArtifactFile(FILE_PATH, ref.digest, ref.size)]
        )
        self.state.tracking.log_batch(self.run_id, tags={"stage": "matrix"})
        return self


@dataclass(frozen=True)
class Example:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Builder = Callable[[Ctx, str], Example]
OBJECT = b"an object of the route matrix"
FILE_PATH = "model/weights.bin"
RAW = {"Content-Type": "application/octet-stream"}


def _login(ctx: Ctx, caller: str) -> Example:
    del caller
    name = ctx.unique("login")
    password = strong_password()
    ctx.state.auth.create_user(name, password)
    return Example("POST", "/api/v1/auth/login", json={"username": name, "password": password})


def _password(ctx: Ctx, caller: str) -> Example:
    new = strong_password()
    if caller not in ctx.passwords:
        return Example(
            "POST",
            "/api/v1/auth/password",
            json={"current_password": "not-a-password-of-anyone", "new_password": new},
        )
    current = ctx.passwords[caller]
    ctx.passwords[caller] = new  # the change succeeds for every admitted caller
    return Example(
        "POST", "/api/v1/auth/password", json={"current_password": current, "new_password": new}
    )


EXAMPLES: dict[tuple[str, str], Builder] = {
    ("GET", "/api/v1/health"): lambda ctx, c: Example("GET", "/api/v1/health"),
    ("GET", "/openapi.json"): lambda ctx, c: Example("GET", "/openapi.json"),
    ("GET", "/docs"): lambda ctx, c: Example("GET", "/docs"),
    ("GET", "/redoc"): lambda ctx, c: Example("GET", "/redoc"),
    ("POST", "/api/v1/auth/login"): _login,
    ("POST", "/api/v1/auth/logout"): lambda ctx, c: Example("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"): lambda ctx, c: Example("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/password"): _password,
    ("POST", "/api/v1/users"): lambda ctx, c: Example(
        "POST",
        "/api/v1/users",
        json={"username": ctx.unique("new"), "password": strong_password()},
    ),
    ("GET", "/api/v1/users"): lambda ctx, c: Example("GET", "/api/v1/users"),
    ("POST", "/api/v1/users/{username}/disable"): lambda ctx, c: Example(
        "POST", f"/api/v1/users/{ctx.new_user()}/disable"
    ),
    ("POST", "/api/v1/tokens"): lambda ctx, c: Example(
        "POST", "/api/v1/tokens", json={"name": ctx.unique("tok"), "role": "viewer"}
    ),
    ("GET", "/api/v1/tokens"): lambda ctx, c: Example("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"): lambda ctx, c: Example(
        "DELETE", f"/api/v1/tokens/{ctx.new_token_id(c)}"
    ),
    ("PUT", "/api/v1/projects/{project}/members/{username}"): lambda ctx, c: Example(
        "PUT", f"/api/v1/projects/{ctx.project}/members/{ctx.new_user()}", json={"role": "viewer"}
    ),
    ("DELETE", "/api/v1/projects/{project}/members/{username}"): lambda ctx, c: _granted(ctx),
    ("GET", "/api/v1/audit"): lambda ctx, c: Example("GET", "/api/v1/audit", params={"limit": 5}),
    ("GET", "/api/v1/audit/verify"): lambda ctx, c: Example("GET", "/api/v1/audit/verify"),
}

# The tracking and artifact routers (the remote helper's; an EXAMPLES dict in
# tests/server/remote/remote_route_examples.py replaces any of these).
EXAMPLES.update(
    {
        ("POST", "/api/v1/projects"): lambda ctx, c: Example(
            "POST", "/api/v1/projects", json={"name": ctx.unique("proj")}
        ),
        ("GET", "/api/v1/projects"): lambda ctx, c: Example("GET", "/api/v1/projects"),
        ("GET", "/api/v1/projects/{project}"): lambda ctx, c: Example(
            "GET", f"/api/v1/projects/{ctx.project}"
        ),
        ("PUT", "/api/v1/projects/{project}"): lambda ctx, c: Example(
            "PUT", f"/api/v1/projects/{ctx.project}"
        ),
        ("POST", "/api/v1/projects/{project}/runs"): lambda ctx, c: Example(
            "POST", f"/api/v1/projects/{ctx.project}/runs", json={"name": ctx.unique("run")}
        ),
        ("GET", "/api/v1/runs/{run_id}"): lambda ctx, c: Example(
            "GET", f"/api/v1/runs/{ctx.run_id}"
        ),
        ("PATCH", "/api/v1/runs/{run_id}"): lambda ctx, c: Example(
            "PATCH", f"/api/v1/runs/{ctx.run_id}", json={"note": ctx.unique("note")}
        ),
        ("DELETE", "/api/v1/runs/{run_id}"): lambda ctx, c: Example(
            "DELETE", f"/api/v1/runs/{ctx.new_run()}"
        ),
        ("POST", "/api/v1/runs/{run_id}/purge"): lambda ctx, c: Example(
            "POST", f"/api/v1/runs/{ctx.new_run()}/purge"
        ),
        ("POST", "/api/v1/runs/search"): lambda ctx, c: Example(
            "POST", "/api/v1/runs/search", json={"max_results": 5}
        ),
        ("POST", "/api/v1/runs/fail-stale"): lambda ctx, c: Example(
            "POST", "/api/v1/runs/fail-stale", json={"now_ms": _now(), "timeout_ms": 10**12}
        ),
        ("POST", "/api/v1/runs/{run_id}/batch"): lambda ctx, c: Example(
            "POST", f"/api/v1/runs/{ctx.run_id}/batch", json={"tags": {"by": ctx.unique()}}
        ),
        ("GET", "/api/v1/runs/{run_id}/metric-history"): lambda ctx, c: Example(
            "GET", f"/api/v1/runs/{ctx.run_id}/metric-history", params={"key": "loss"}
        ),
        ("POST", "/api/v1/runs/{run_id}/io"): lambda ctx, c: Example(
            "POST",
            f"/api/v1/runs/{ctx.run_id}/io",
            json={"items": [{"ref": "churn@v1", "kind": "dataset", "direction": "input"}]},
        ),
        ("GET", "/api/v1/lineage"): lambda ctx, c: Example(
            "GET", "/api/v1/lineage", params={"ref": "churn@v1"}
        ),
        ("POST", "/api/v1/runs/{run_id}/artifact-files"): lambda ctx, c: Example(
            "POST",
            f"/api/v1/runs/{ctx.run_id}/artifact-files",
            json={"files": [{"path": FILE_PATH, "digest": ctx.digest, "size": len(OBJECT)}]},
        ),
        ("GET", "/api/v1/runs/{run_id}/artifact-files"): lambda ctx, c: Example(
            "GET", f"/api/v1/runs/{ctx.run_id}/artifact-files"
        ),
        ("GET", "/api/v1/runs/{run_id}/artifacts/{path:path}"): lambda ctx, c: Example(
            "GET", f"/api/v1/runs/{ctx.run_id}/artifacts/{FILE_PATH}"
        ),
        ("GET", "/api/v1/artifacts/referenced-digests"): lambda ctx, c: Example(
            "GET", "/api/v1/artifacts/referenced-digests"
        ),
        ("PUT", "/api/v1/artifacts/objects/{digest}"): lambda ctx, c: Example(
            "PUT", f"/api/v1/artifacts/objects/{ctx.digest}", content=OBJECT, headers=RAW
        ),
        ("GET", "/api/v1/artifacts/objects/{digest}"): lambda ctx, c: Example(
            "GET", f"/api/v1/artifacts/objects/{ctx.digest}"
        ),
        ("HEAD", "/api/v1/artifacts/objects/{digest}"): lambda ctx, c: Example(
            "HEAD", f"/api/v1/artifacts/objects/{ctx.digest}"
        ),
        ("PUT", "/api/v1/artifacts/keys/{key:path}"): lambda ctx, c: Example(
            "PUT", f"/api/v1/artifacts/keys/matrix/{ctx.unique()}.bin", content=OBJECT, headers=RAW
        ),
        ("GET", "/api/v1/artifacts/keys/{key:path}"): lambda ctx, c: Example(
            "GET", f"/api/v1/artifacts/keys/{_object_key(ctx.digest)}"
        ),
        ("HEAD", "/api/v1/artifacts/keys/{key:path}"): lambda ctx, c: Example(
            "HEAD", f"/api/v1/artifacts/keys/{_object_key(ctx.digest)}"
        ),
        ("DELETE", "/api/v1/artifacts/keys/{key:path}"): lambda ctx, c: Example(
            "DELETE", f"/api/v1/artifacts/keys/matrix/{ctx.unique()}.bin"
        ),
        ("GET", "/api/v1/artifacts/keys"): lambda ctx, c: Example(
            "GET", "/api/v1/artifacts/keys", params={"prefix": "objects"}
        ),
        ("POST", "/api/v1/artifacts/purge-incomplete"): lambda ctx, c: Example(
            "POST", "/api/v1/artifacts/purge-incomplete", json={"older_than_s": 3600}
        ),
    }
)


def _now() -> int:
    from keel._time import now_ms

    return now_ms()


def _object_key(digest: str) -> str:
    from keel.artifacts import object_key

    return object_key(digest)


# Routes where the policy admits the caller but the example is still refused for a reason of
# its own (documented at the builder); the matrix accepts these statuses as "admitted".
ADMITTED_REFUSALS: dict[tuple[str, str], frozenset[int]] = {
    # Any signed-in caller may ask, but an object is read only by whoever can read a project
    # referencing it (or uploaded it): a caller without a grant gets 404 (test_object_scoping).
    ("GET", "/api/v1/artifacts/objects/{digest}"): frozenset({404}),
    ("HEAD", "/api/v1/artifacts/objects/{digest}"): frozenset({404}),
}


def _granted(ctx: Ctx) -> Example:
    from keel.auth import Role

    user = ctx.new_user()
    ctx.state.auth.grant(ctx.project, user, Role.VIEWER)
    return Example("DELETE", f"/api/v1/projects/{ctx.project}/members/{user}")


def _load_remote() -> None:
    path = Path(__file__).parent / "remote" / "remote_route_examples.py"
    if not path.is_file():
        return
    spec = importlib.util.spec_from_file_location("remote_route_examples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    EXAMPLES.update(module.EXAMPLES)
    ADMITTED_REFUSALS.update(getattr(module, "ADMITTED_REFUSALS", {}))


_load_remote()


def _load_models() -> None:
    # The model registry, release and deployment routes. Loaded from its file under a name of
    # its own (that module imports this one, and may be what a test imported first).
    path = Path(__file__).with_name("models_route_examples.py")
    spec = importlib.util.spec_from_file_location("models_route_examples_matrix", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    EXAMPLES.update(module.EXAMPLES)


_load_models()


def _load_monitoring() -> None:
    # The monitoring and alert routes, loaded like the model routes' examples.
    path = Path(__file__).with_name("monitoring_route_examples.py")
    spec = importlib.util.spec_from_file_location("monitoring_route_examples_matrix", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    EXAMPLES.update(module.EXAMPLES)


_load_monitoring()
