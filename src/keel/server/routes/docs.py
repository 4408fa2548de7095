"""The OpenAPI schema and its two documentation pages, public like the health check.

They are ordinary routes (not FastAPI's built-in ones) so that they carry a policy like every
other route, and so each page can send the one Content-Security-Policy that lets it load its
scripts from the CDN (pinned by hash for the inline one) while the API keeps the strict one.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from keel.server._policy import public

OPENAPI_URL = "/openapi.json"
TITLE = "Keel API"

router = APIRouter(tags=["docs"], include_in_schema=False)


def _page_csp(html: str) -> str:
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline
    )
    return (
        "default-src 'none'; "
        f"script-src https://cdn.jsdelivr.net {hashes}; "
        "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
        "font-src https://fonts.gstatic.com; "
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
        "connect-src 'self'; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _page(response: HTMLResponse) -> HTMLResponse:
    html = bytes(response.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": _page_csp(html)})


@router.get(OPENAPI_URL, dependencies=[public()])
def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 schema of every route."""
    schema: dict[str, Any] = request.app.openapi()
    return Response(orjson.dumps(schema), media_type="application/json")


@router.get("/docs", dependencies=[public()])
def swagger() -> HTMLResponse:
    """Interactive API documentation (Swagger UI)."""
    return _page(get_swagger_ui_html(openapi_url=OPENAPI_URL, title=TITLE))


@router.get("/redoc", dependencies=[public()])
def redoc() -> HTMLResponse:
    """Reference API documentation (ReDoc)."""
    return _page(get_redoc_html(openapi_url=OPENAPI_URL, title=TITLE))
