"""The app factory: ``create_app()`` builds the FastAPI app of one server process.

Middleware is pure ASGI (never ``BaseHTTPMiddleware``, which buffers and breaks streaming), from
the outside in: host allowlist, CORS and security headers -> audit -> body limits. Errors become
JSON in ``_errors``. Every route carries exactly one policy from ``_policy``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from keel.server._settings import ServerSettings
from keel.server._state import ServerState, open_state


def create_app(
    settings: ServerSettings | None = None, *, state: ServerState | None = None
) -> FastAPI:
    """A new app. ``settings`` default to the ``KEEL_SERVER_*`` environment (what each
    ``keel server`` worker uses); ``state`` reuses already-open stores (tests)."""
    from keel import __version__
    from keel.server import _errors
    from keel.server._audit import AuditMiddleware
    from keel.server._body import BodyLimitMiddleware
    from keel.server._guard import GuardMiddleware
    from keel.server.routes import ROUTERS, docs

    settings = settings or ServerSettings()
    owned = state is None
    state = state or open_state(settings)
    opened = state

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:  # stores the caller passed in are the caller's to close
                opened.close()

    app = FastAPI(
        title="Keel",
        version=__version__,
        description="The Keel team server: tracking, artifacts, data, users and audit.",
        docs_url=None,
        redoc_url=None,
        # The schema and the docs pages are ordinary public routes (routes/docs.py).
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.keel = state
    _errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(docs.router)
    _require_policies(app)
    _document_security(app, settings.session_cookie)
    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(BodyLimitMiddleware, limits=state.limits)
    app.add_middleware(AuditMiddleware, state=state)
    app.add_middleware(GuardMiddleware, settings=settings)
    return app


def _document_security(app: FastAPI, cookie: str) -> None:
    """Name the credentials in the OpenAPI schema: bearer tokens and the session cookie on
    every operation that is not public (the docs page then offers "Authorize")."""
    from keel.server._policy import route_table

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer", "description": "keel_… API token"},
            "session": {"type": "apiKey", "in": "cookie", "name": cookie},
        }
        guarded = {
            (path, method.lower())
            for path, methods, policies in route_table(app.routes)
            for method in methods
            if policies and policies[0].kind != "public"
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if (path, method) in guarded:
                    operation["security"] = [{"token": []}, {"session": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _require_policies(app: FastAPI) -> None:
    """Default deny: the app is not built if any route lacks its one policy (a route without
    one would otherwise be served to anyone)."""
    from keel.errors import ConfigError
    from keel.server._policy import route_table

    for path, methods, policies in route_table(app.routes):
        if len(policies) != 1:
            raise ConfigError(
                f"route {' '.join(sorted(methods)) or '(no methods)'} {path} declares "
                f"{len(policies)} policies; give it exactly one of keel.server._policy"
            )
