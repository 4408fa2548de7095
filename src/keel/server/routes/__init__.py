"""One router per domain, all under ``/api/v1``. ``create_app`` mounts every router in
``ROUTERS``; add a domain by appending its router here (one line)."""

from __future__ import annotations

from fastapi import APIRouter

from keel.server.routes import (
    admin,
    artifacts,
    auth,
    data,
    deployments,
    health,
    models,
    monitoring,
    monitoring_alerts,
    tracking,
)

ROUTERS: list[APIRouter] = [
    health.router,
    tracking.router,
    artifacts.router,
    data.router,
    models.router,
    deployments.router,
    monitoring.router,
    monitoring_alerts.router,
    auth.router,
    admin.router,
]
