"""Liveness: answers without touching a store, so a load balancer can probe it cheaply."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from keel.server._policy import public

router = APIRouter(prefix="/api/v1", tags=["health"])


class Health(BaseModel):
    status: str
    version: str


@router.get("/health", dependencies=[public()])
def health() -> Health:
    """The server is up."""
    from keel import __version__

    return Health(status="ok", version=__version__)
