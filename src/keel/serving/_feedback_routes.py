"""``POST /feedback`` as a FastAPI router, for the inference app (or any app) to mount.

One label ``{"deployment", "request_id", "label"[, "timestamp"]}`` or a batch
``{"deployment", "items": [...]}`` (at most ``MAX_BATCH`` items, all-or-nothing); the answer is
``{"deployment", "received", "applied", "stale"}``. Bodies are read with a byte bound before
parsing. The router does not authenticate: the app that mounts it applies its auth policy,
as for every other route. FastAPI loads with this module (FastAPI resolves the handler's
annotations from the module's globals), so ``keel.serving`` imports it only on first use.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInput, KeelError, StoreUnavailable
from keel.monitoring._feedback import SqlFeedbackStore, handle_feedback
from keel.serving._app_http import error_response, json_response, read_body

# 10,000 items of an id, a label and a timestamp fit in well under this.
DEFAULT_MAX_BODY = 4 * 1024 * 1024


def feedback_router(
    store: SqlFeedbackStore, *, max_body_bytes: int = DEFAULT_MAX_BODY
) -> APIRouter:
    """A router with ``POST /feedback`` storing labels in ``store``."""
    router = APIRouter()

    @router.post("/feedback")
    async def post_feedback(request: Request) -> Response:
        try:
            raw = await read_body(request, limit=max_body_bytes)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"not JSON: {exc}", field="body") from None
            # Database work off the event loop: a slow store must not stall /invocations.
            result = await run_in_threadpool(handle_feedback, store, body)
        except StoreUnavailable as exc:
            busy = json_response(
                {"error": str(exc), "error_code": "UNAVAILABLE", "field": None}, status=503
            )
            busy.headers["Retry-After"] = "1"
            return busy
        except KeelError as exc:
            return error_response(exc)[0]
        return json_response(result)

    return router
