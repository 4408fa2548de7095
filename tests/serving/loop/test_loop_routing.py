"""Routing: canary split ratio within tolerance, stickiness, shadow plan."""

from __future__ import annotations

import subprocess
import sys

import pytest

from keel.serving._deployments import Deployment, Mode, Role
from keel.serving._routing import RoutePlan, bucket, plan, route


def canary(percent: float, name: str = "d") -> Deployment:
    return Deployment(name, "m", 1, challenger=2, mode=Mode.CANARY, percent=percent)


@pytest.mark.parametrize("percent", [1.0, 10.0, 50.0, 90.0])
def test_canary_split_over_10000_keys(percent: float) -> None:
    d = canary(percent)
    hits = sum(route(d, f"user-{i}") is Role.CHALLENGER for i in range(10_000))
    # Binomial sd at 50% is 50 keys; 4 sd is far outside chance but catches a biased hash.
    assert abs(hits - percent * 100) <= 200


def test_the_same_key_always_gets_the_same_role() -> None:
    d = canary(30.0)
    first = [route(d, f"k{i}") for i in range(1000)]
    assert first == [route(d, f"k{i}") for i in range(1000)]


def test_split_is_stable_across_processes() -> None:
    # Python's str hash is salted per process; the bucket must not be.
    code = "from keel.serving._routing import bucket; print(repr(bucket('d', 'user-7')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert float(out) == bucket("d", "user-7")


def test_deployments_pick_different_users() -> None:
    a, b = canary(50.0, "a"), canary(50.0, "b")
    same = sum(route(a, f"u{i}") is route(b, f"u{i}") for i in range(2000))
    assert 800 < same < 1200  # independent splits agree about half the time


def test_canary_without_key_is_a_random_split() -> None:
    d = canary(20.0)
    hits = sum(route(d, None) is Role.CHALLENGER for _ in range(10_000))
    assert 1600 < hits < 2400


def test_single_and_shadow() -> None:
    single = Deployment("d", "m", 1)
    assert route(single, "x") is Role.CHAMPION
    assert plan(single, "x") == RoutePlan(Role.CHAMPION, None)
    shadow = Deployment("d", "m", 1, challenger=2, mode=Mode.SHADOW)
    assert route(shadow, "x") is Role.CHAMPION
    assert plan(shadow, "x") == RoutePlan(Role.CHAMPION, Role.CHALLENGER)
    d = canary(50.0)
    assert {plan(d, f"u{i}").shadow for i in range(100)} == {None}
