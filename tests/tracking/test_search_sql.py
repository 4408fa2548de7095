# ruff: noqa: E501 - the query battery reads best one query and its Python twin per line
"""The search compiler against a brute-force Python filter over 1,000 generated runs, on SQLite
and PostgreSQL. Data goes straight into the tables, so these tests do not depend on the store."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from keel.db import connect, transaction
from keel.errors import InvalidInput, QuerySyntaxError
from keel.tracking._search_sql import select_run_ids
from keel.tracking._tables import latest_metrics, params, projects, runs, tags

Run = dict[str, Any]
NUM = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
T0 = 1_700_000_000_000


def generate(rng: random.Random, n: int) -> list[Run]:
    out: list[Run] = []
    for i in range(n):
        status = rng.choice(["RUNNING", "FINISHED", "FINISHED", "FAILED", "KILLED"])
        start = T0 + rng.randrange(400) * 1000  # many equal start times: the id breaks ties
        p: dict[str, str] = {}

        def maybe(key: str, value: str, chance: float = 0.8) -> None:
            if rng.random() < chance:
                p[key] = value

        maybe("lr", rng.choice(["0.1", "0.01", "1e-3", "0.001", "5", " 5", "auto", "-2.5", "1e999",
                                "1.5.2", "", "+.5", "NaN", "1e5000", str(rng.random())]))  # fmt: skip
        maybe("C", str(rng.choice([1, 10, 100, -3])) if rng.random() < 0.9 else "none")
        maybe("model", rng.choice(["rf", "svm", "lgbm", "RF", "xgb_v2", "x%y", "Svm"]))
        maybe("lr.decay", str(round(rng.uniform(0, 1), 2)), 0.5)
        maybe("flag", rng.choice(["true", "True", "FALSE", "false", "yes"]), 0.7)
        t: dict[str, str] = {}
        if rng.random() < 0.7:
            t["team"] = rng.choice(["ml", "data", "ML", "ops", "Ops"])
        if rng.random() < 0.6:
            t["note"] = rng.choice(["50% off", "a_b", "axb", "a\\b", "plain", "é accent", "x*y"])
        m: dict[str, float] = {}
        if rng.random() < 0.85:
            m["auc"] = round(rng.random(), rng.choice([1, 2, 6]))
        if rng.random() < 0.7:
            m["val loss"] = rng.choice([rng.uniform(-1, 3), 0.0, 1.0, float(rng.randrange(5))])
        if rng.random() < 0.1:
            m["flagged"] = rng.choice([0.0, 1.0, 2.0])
        out.append({
            "id": f"{rng.getrandbits(64):016x}{i:04d}",
            "project": rng.choice(["churn", "fraud"]),
            "name": rng.choice(["baseline", "tuned", "run 1", "Run_2", "exp%1"]),
            "status": status,
            "start_ms": start,
            "end_ms": None if status == "RUNNING" else start + rng.randrange(100_000),
            "user": rng.choice(["alice", "bob", "Carol"]),
            "host": rng.choice(["gpu-1", "gpu-2", "laptop"]),
            "git_commit": None if rng.random() < 0.3 else f"{rng.getrandbits(40):010x}",
            "parent_id": out[rng.randrange(i)]["id"] if i and rng.random() < 0.2 else None,
            "deleted": rng.random() < 0.05,
            "params": p, "tags": t, "metrics": m,
        })  # fmt: skip
    return out


def store(engine: Engine, data: list[Run]) -> None:
    pid = {"churn": "p0000000000000000000000000000001", "fraud": "p2"}
    with engine.begin() as conn:
        conn.execute(insert(projects), [{"id": v, "name": k, "description": "", "created_ms": 0}
                                        for k, v in pid.items()])  # fmt: skip
        conn.execute(insert(runs), [{
            "id": r["id"], "project_id": pid[r["project"]], "name": r["name"],
            "parent_id": r["parent_id"], "status": r["status"], "start_ms": r["start_ms"],
            "end_ms": r["end_ms"], "heartbeat_ms": r["start_ms"], "user": r["user"],
            "host": r["host"], "git_commit": r["git_commit"], "python_version": "3.12",
            "packages": "{}", "note": "", "deleted": r["deleted"]} for r in data])  # fmt: skip
        for table, field in ((params, "params"), (tags, "tags")):
            rows = [{"run_id": r["id"], "key": k, "value": v} for r in data
                    for k, v in r[field].items()]  # fmt: skip
            conn.execute(insert(table), rows)
        rows = [{"run_id": r["id"], "key": k, "value": v, "step": 0, "timestamp_ms": 0}
                for r in data for k, v in r["metrics"].items()]  # fmt: skip
        conn.execute(insert(latest_metrics), rows)


@pytest.fixture
def world(db_url: str) -> tuple[Engine, list[Run]]:
    engine = connect(db_url)
    data = generate(random.Random(20240601), 1000)
    store(engine, data)
    return engine, data


def search(engine: Engine, **kw: Any) -> tuple[list[str], str | None]:
    args = {"filter": "", "order_by": (), "project_ids": None, "include_deleted": False,
            "max_results": 50_000, "page_token": None, **kw}  # fmt: skip
    return transaction(engine, lambda conn: select_run_ids(conn, **args), write=False)


# -- the reference: plain Python over the generated dicts ---------------------------------------


def num(value: str | None) -> float | None:
    return float(value) if value is not None and NUM.fullmatch(value) else None


def like(value: str | None, pattern: str, ci: bool = False) -> bool:
    if value is None:
        return False
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S | (re.I if ci else 0)) is not None


def p(r: Run, k: str) -> str | None:
    return r["params"].get(k)


def m(r: Run, k: str) -> float | None:
    return r["metrics"].get(k)


def dur(r: Run) -> int | None:
    return None if r["end_ms"] is None else r["end_ms"] - r["start_ms"]


def gt(a: float | None, b: float) -> bool:
    return a is not None and a > b


QUERIES: list[tuple[str, Callable[[Run], bool]]] = [
    ("", lambda r: True),
    ("metrics.auc > 0.5", lambda r: gt(m(r, "auc"), 0.5)),
    ("metrics.auc >= 0.5 and metrics.auc <= 0.7", lambda r: m(r, "auc") is not None and 0.5 <= m(r, "auc") <= 0.7),
    ("metrics.auc = 0.5", lambda r: m(r, "auc") == 0.5),
    ("metrics.auc != 0.5", lambda r: m(r, "auc") is not None and m(r, "auc") != 0.5),
    ("not metrics.auc > 0.5", lambda r: not gt(m(r, "auc"), 0.5)),
    ("metrics.auc is null", lambda r: m(r, "auc") is None),
    ("metrics.`val loss` < 0 or metrics.`val loss` in (1, 2.0)", lambda r: m(r, "val loss") is not None and (m(r, "val loss") < 0 or m(r, "val loss") in (1, 2))),
    ("metrics.\"val loss\" not in (0, 1)", lambda r: m(r, "val loss") is not None and m(r, "val loss") not in (0, 1)),
    ("metrics.flagged = true", lambda r: m(r, "flagged") == 1.0),
    ("params.lr > 0.005", lambda r: gt(num(p(r, "lr")), 0.005)),
    ("params.lr = 0.001", lambda r: num(p(r, "lr")) == 0.001),
    ("params.lr != 0.001", lambda r: num(p(r, "lr")) is not None and num(p(r, "lr")) != 0.001),
    ("not params.lr = 0.001", lambda r: num(p(r, "lr")) != 0.001),
    ("params.lr = '0.001'", lambda r: p(r, "lr") == "0.001"),
    ("params.lr < '0.1'", lambda r: p(r, "lr") is not None and p(r, "lr") < "0.1"),
    ("params.lr >= -2.5e0 and params.lr < 1", lambda r: num(p(r, "lr")) is not None and -2.5 <= num(p(r, "lr")) < 1),
    ("params.lr is not null and params.lr not in (0.1, 0.01)", lambda r: num(p(r, "lr")) is not None and num(p(r, "lr")) not in (0.1, 0.01)),
    ("params.C in (1, 10)", lambda r: num(p(r, "C")) in (1, 10)),
    ("params.C in ('1', 'none')", lambda r: p(r, "C") in ("1", "none")),
    ("params.C not in ('1', 'none')", lambda r: p(r, "C") is not None and p(r, "C") not in ("1", "none")),
    ("params.C is null or params.C = 'none'", lambda r: p(r, "C") in (None, "none")),
    ("params.model like 'x%'", lambda r: like(p(r, "model"), "x%")),
    ("params.model like '%\\%%'", lambda r: p(r, "model") is not None and "%" in p(r, "model")),
    ("params.model like 's_m'", lambda r: like(p(r, "model"), "s_m")),
    ("params.model ilike 's_m'", lambda r: like(p(r, "model"), "s_m", ci=True)),
    ("params.model not ilike 'rf'", lambda r: p(r, "model") is not None and p(r, "model").lower() != "rf"),
    ("params.`lr.decay` > 0.5 or params.\"lr.decay\" is null", lambda r: num(p(r, "lr.decay")) is None or num(p(r, "lr.decay")) > 0.5),
    ("params.flag = true", lambda r: (p(r, "flag") or "").lower() == "true"),
    ("params.flag != true", lambda r: (p(r, "flag") or "").lower() == "false"),
    ("tags.team = 'ml'", lambda r: r["tags"].get("team") == "ml"),
    ("tags.team ilike 'ml' and not tags.note like '%\\_%'", lambda r: (r["tags"].get("team") or "").lower() == "ml" and "_" not in (r["tags"].get("note") or "")),
    (r"tags.note like 'a\\b'", lambda r: r["tags"].get("note") == "a\\b"),
    ("tags.note like 'x*y' or tags.note = 'é accent'", lambda r: r["tags"].get("note") in ("x*y", "é accent")),
    ("tags.note > 'a' and tags.note < 'b'", lambda r: "a" < (r["tags"].get("note") or "") < "b"),
    ("status = 'finished'", lambda r: r["status"] == "FINISHED"),
    ("attributes.status in ('failed', 'KILLED') and user != 'bob'", lambda r: r["status"] in ("FAILED", "KILLED") and r["user"] != "bob"),
    ("status like 'f%' and not (host = 'laptop')", lambda r: r["status"] in ("FINISHED", "FAILED") and r["host"] != "laptop"),
    ("end_time is null", lambda r: r["end_ms"] is None),
    ("duration_ms > 50000", lambda r: gt(dur(r), 50_000)),
    (f"start_time >= {T0 + 200_000} and run_name != 'tuned'", lambda r: r["start_ms"] >= T0 + 200_000 and r["name"] != "tuned"),
    ("project = 'fraud' and git_commit is not null", lambda r: r["project"] == "fraud" and r["git_commit"] is not None),
    ("parent_id is not null and (metrics.auc < 0.2 or params.model = 'rf')", lambda r: r["parent_id"] is not None and (gt(0.2, m(r, "auc") if m(r, "auc") is not None else 1) or p(r, "model") == "rf")),
    ("name like '%\\%%' or name ilike 'RUN%'", lambda r: "%" in r["name"] or r["name"].lower().startswith("run")),
    ("not (params.lr > 0.005 or params.lr is null)", lambda r: not (gt(num(p(r, "lr")), 0.005) or p(r, "lr") is None)),
]  # fmt: skip


def sort_ref(data: list[Run], keys: Sequence[tuple[Callable[[Run], Any], bool]]) -> list[str]:
    """Ids ordered by ``keys`` (value function, descending) with None last, then by id."""

    def cmp(a: Run, b: Run) -> int:
        for key, desc in keys:
            x, y = key(a), key(b)
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            order = (x > y) - (x < y)
            return -order if desc else order
        return (a["id"] > b["id"]) - (a["id"] < b["id"])

    return [r["id"] for r in sorted(data, key=functools.cmp_to_key(cmp))]


DEFAULT_ORDER = [(lambda r: r["start_ms"], True)]


def test_filters_match_brute_force(world: tuple[Engine, list[Run]]) -> None:
    engine, data = world
    live = [r for r in data if not r["deleted"]]
    failures = []
    for query, predicate in QUERIES:
        expected = sort_ref([r for r in live if predicate(r)], DEFAULT_ORDER)
        got, token = search(engine, filter=query)
        if got != expected or token is not None:
            failures.append(f"{query!r}: {len(got)} rows, expected {len(expected)}")
    assert len(QUERIES) >= 40
    assert not failures, "\n".join(failures)
    # the battery is not trivially empty or full
    sizes = [sum(map(pred, live)) for _, pred in QUERIES[1:]]
    assert all(0 < s < len(live) for s in sizes), sizes


def pkey(k: str, desc: bool) -> list[tuple[Callable[[Run], Any], bool]]:
    return [(lambda r: num(p(r, k)), desc), (lambda r: p(r, k), desc)]


ORDERS: list[tuple[list[str], list[tuple[Callable[[Run], Any], bool]]]] = [
    ([], DEFAULT_ORDER),
    (["-metrics.auc"], [(lambda r: m(r, "auc"), True)]),
    (["metrics.auc asc", "start_time desc"], [(lambda r: m(r, "auc"), False), (lambda r: r["start_ms"], True)]),
    (["params.lr"], pkey("lr", False)),
    (["params.lr DESC", "-metrics.`val loss`"], [*pkey("lr", True), (lambda r: m(r, "val loss"), True)]),
    (["tags.team", "params.C desc"], [(lambda r: r["tags"].get("team"), False), *pkey("C", True)]),
    (["-duration_ms", "status"], [(dur, True), (lambda r: r["status"], False)]),
    (["project", "-name", "git_commit"], [(lambda r: r["project"], False), (lambda r: r["name"], True), (lambda r: r["git_commit"], False)]),
    (["-id"], [(lambda r: r["id"], True)]),
]  # fmt: skip


def test_ordering_matches_brute_force(world: tuple[Engine, list[Run]]) -> None:
    engine, data = world
    live = [r for r in data if not r["deleted"]]
    for order_by, keys in ORDERS:
        got, _ = search(engine, order_by=order_by)
        assert got == sort_ref(live, keys), order_by


@pytest.mark.parametrize("page", [1, 7, 64])
def test_paging_gives_the_same_sequence_as_one_page(
    world: tuple[Engine, list[Run]], page: int
) -> None:
    engine, _ = world
    cases = [("", ["-metrics.auc"]), ("params.lr > 0 or tags.team is null", ["params.lr desc"]),
             ("status != 'running'", ["-duration_ms", "tags.note"]), ("", [])]  # fmt: skip
    if page == 1:  # one row per query is slow on 1,000 runs: a narrower filter
        cases = [("metrics.auc < 0.15", ["params.lr", "-metrics.`val loss`"])]
    for query, order_by in cases:
        whole, none = search(engine, filter=query, order_by=order_by)
        assert none is None and len(whole) > page
        seen: list[str] = []
        token: str | None = None
        while True:
            ids, token = search(
                engine, filter=query, order_by=order_by, max_results=page, page_token=token
            )
            assert 0 < len(ids) <= page
            seen += ids
            if token is None:
                break
        assert seen == whole, (query, order_by)


def test_scope_deleted_and_projects(world: tuple[Engine, list[Run]]) -> None:
    engine, data = world
    everything, _ = search(engine, include_deleted=True)
    assert everything == sort_ref(data, DEFAULT_ORDER)
    assert len(everything) == 1000
    fraud = [r for r in data if r["project"] == "fraud" and not r["deleted"]]
    got, _ = search(engine, project_ids=["p2"])
    assert got == sort_ref(fraud, DEFAULT_ORDER)
    assert search(engine, project_ids=[]) == ([], None)


def test_page_tokens_are_checked(world: tuple[Engine, list[Run]]) -> None:
    engine, _ = world
    first, token = search(engine, filter="metrics.auc > 0.1", max_results=5)
    assert token is not None and len(first) == 5
    for other in ({"filter": "metrics.auc > 0.2"}, {"filter": "metrics.auc > 0.1", "order_by": ["id"]},
                  {"filter": "metrics.auc > 0.1", "include_deleted": True},
                  {"filter": "metrics.auc > 0.1", "project_ids": ["p2"]}):  # fmt: skip
        with pytest.raises(InvalidInput) as info:
            search(engine, page_token=token, **other)
        assert info.value.field == "page_token"
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (tampered, "not a token", "", "e30", token + "x"):
        with pytest.raises(InvalidInput) as info:
            search(engine, filter="metrics.auc > 0.1", page_token=bad)
        assert info.value.field == "page_token"
    second, _ = search(engine, filter="metrics.auc > 0.1", max_results=5, page_token=token)
    assert not set(first) & set(second)


def test_max_results_is_validated(db_url: str) -> None:
    engine = connect(db_url)
    for bad in (0, -1, 50_001, True, 2.5, "10"):
        with pytest.raises(InvalidInput) as info:
            search(engine, max_results=bad)
        assert info.value.field == "max_results"
    assert search(engine, max_results=50_000) == ([], None)


def test_syntax_errors_surface_before_any_sql(world: tuple[Engine, list[Run]]) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        search(world[0], filter="metrics.auc > 0.5 and")
    assert info.value.position == len("metrics.auc > 0.5 and")
    with pytest.raises(QuerySyntaxError) as info:
        search(world[0], order_by=["-metrics.auc desc"])
    assert info.value.field == "order_by"
