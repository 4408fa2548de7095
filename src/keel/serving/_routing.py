"""Routing a request between champion and challenger: pure functions of the deployment's
configuration and the request's sticky key, so every replica of the app decides alike.

* ``single``: the champion answers everything.
* ``shadow``: the champion answers; the challenger gets a copy whose answer is logged, never
  returned.
* ``canary``: ``percent`` of requests are answered by the challenger. With a sticky key the
  split is a stable hash of (deployment, key), so one user always sees the same model and two
  deployments do not pick the same users; without a key each request is a fresh draw.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from keel.serving._deployments import Deployment, Mode, Role

# 2**64 buckets: the split's granularity is far below any percent a user can ask for.
_BUCKETS = float(1 << 64)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Who answers a request, and who (if anyone) gets a copy in the shadow."""

    answer: Role
    shadow: Role | None = None


def bucket(deployment: str, key: str) -> float:
    """The stable position of ``key`` in [0, 100) for ``deployment`` (BLAKE2b, not Python's
    salted ``hash``, so it agrees across processes and restarts)."""
    digest = hashlib.blake2b(f"{deployment}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _BUCKETS * 100.0


def route(deployment: Deployment, request_key: str | None = None) -> Role:
    """The role that answers a request with ``request_key`` (the value of the deployment's
    sticky key in the request, or None)."""
    if deployment.mode is not Mode.CANARY or deployment.challenger is None:
        return Role.CHAMPION
    if deployment.percent <= 0:
        return Role.CHAMPION
    if deployment.percent >= 100:
        return Role.CHALLENGER
    point = (
        random.random() * 100.0  # a traffic split, not a secret
        if request_key is None
        else bucket(deployment.name, request_key)
    )
    return Role.CHALLENGER if point < deployment.percent else Role.CHAMPION


def plan(deployment: Deployment, request_key: str | None = None) -> RoutePlan:
    """``route`` plus the shadow copy: in ``shadow`` mode the champion answers and the
    challenger gets the same input."""
    if deployment.mode is Mode.SHADOW and deployment.challenger is not None:
        return RoutePlan(Role.CHAMPION, Role.CHALLENGER)
    return RoutePlan(route(deployment, request_key))
