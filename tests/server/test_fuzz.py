"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis), against a
live server, as a global admin: valid and invalid requests for every operation, no 5xx.

Bounded to about 40-60 s of fuzzing in ``make test``; ``KEEL_SLOW=1`` gives it ten minutes.
Every router in ``ROUTERS`` is in the schema, so new routes are fuzzed as soon as they are
mounted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

SLOW = os.environ.get("KEEL_SLOW") == "1"
BUDGET_S = 600.0 if SLOW else 40.0


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {"rate_per_minute": 0}  # thousands of requests a minute from one token


@pytest.mark.slow
@pytest.mark.timeout(int(2 * BUDGET_S) + 120)  # the suite's 300 s default is below the slow budget
def test_no_operation_answers_5xx(live: Any, state: Any) -> None:
    import requests
    import schemathesis
    from schemathesis import GenerationMode

    from keel.auth import Role

    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    state.tracking.create_run(project="fuzz")
    ctx = _Run(url=live.url, session=requests.Session())
    per_run = BUDGET_S / (2 * len(operations))

    for operation in operations:
        # A fresh token per operation: a fuzzed DELETE /tokens/{id} may revoke the one in use.
        token, _ = state.auth.create_token(
            "admin", name=f"fuzz-{time.monotonic_ns()}", role=Role.ADMIN
        )
        auth = {"Authorization": f"Bearer {token}"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, stop=time.monotonic() + per_run, auth=auth, ctx=ctx)
    assert not ctx.failures, f"{len(ctx.failures)} 5xx answers:\n" + "\n\n".join(ctx.failures[:10])
    assert ctx.calls >= 5 * len(operations), (ctx.calls, ctx.skipped)


class _TimeUp(Exception):
    """Raised inside the Hypothesis test when an operation's time budget is spent."""


@dataclass
class _Run:
    url: str
    session: Any
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    skipped: int = 0


def _fuzz(operation: Any, mode: Any, *, stop: float, auth: dict[str, str], ctx: _Run) -> None:
    import requests
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    @settings(
        max_examples=10_000 if SLOW else 200,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        if time.monotonic() > stop:
            raise _TimeUp  # ends this operation's run now, not after max_examples empty draws
        try:
            response = case.call(base_url=ctx.url, session=ctx.session, headers=auth, timeout=30)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            ctx.skipped += 1  # the client refused to send it (e.g. NUL in a header)
            return
        ctx.calls += 1
        if response.status_code >= 500:
            ctx.failures.append(
                f"{case.operation.label} [{mode}] -> {response.status_code} "
                f"{response.text[:300]}\n{case.as_curl_command(headers=auth)}"
            )

    try:
        check()
    except _TimeUp:
        pass  # the time budget of this operation is spent
    except Unsatisfiable:
        # Nothing to make invalid (an operation without parameters or body).
        assert not mode.is_positive, operation.label
