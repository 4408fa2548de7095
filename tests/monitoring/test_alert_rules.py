"""Alert rules: bad input named by field, durations, globs, rules declared in keel.toml, and
concurrent evaluators opening one alert (threads; SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound, StoreError
from keel.monitoring._alert_sql import SqlAlertStore
from keel.monitoring._alerts import (
    add_channel,
    add_rule,
    enable_rule,
    evaluate,
    evaluate_result,
    list_alert_events,
    list_rules,
    remove_channel,
)
from keel.monitoring._alerts_rules import format_duration, make_rule, parse_duration
from keel.monitoring._quantities import Quantity

DAY = 86_400_000
GOOD = {"quantity": "drift.share", "operator": ">", "threshold": 0.3}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"quantity": ""}, "quantity"),
        ({"quantity": "x" * 251}, "quantity"),
        ({"operator": "=="}, "operator"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"window": "yesterday"}, "window"),
        ({"window": "0h"}, "window"),
        ({"window": "anything"}, "window"),
        ({"window": "400d"}, "window"),
        ({"min_samples": -1}, "min_samples"),
        ({"min_samples": 2.5}, "min_samples"),
        ({"severity": "urgent"}, "severity"),
        ({"channels": "ops"}, "channels"),
        ({"channels": ["ops", "ops"]}, "channels"),
        ({"channels": ["../x"]}, "channels[0]"),
        ({"cooldown": "soon"}, "cooldown"),
        ({"enabled": "yes"}, "enabled"),
        ({"deployment": "a/b"}, "deployment"),
    ],
)
def test_bad_rule_input_is_named_by_field(changes: dict, field: str) -> None:
    fields = {"name": "r", **GOOD, **changes}
    with pytest.raises(InvalidInput) as info:
        make_rule(fields.pop("name"), **fields)
    assert info.value.field == field


def test_durations_parse_and_print_back() -> None:
    assert parse_duration("24h", field="w") == DAY
    assert parse_duration("1h30m", field="w") == 5_400_000
    assert parse_duration(" 7D ", field="w") == 7 * DAY
    assert parse_duration(1500, field="w") == 1500
    assert [format_duration(ms) for ms in (DAY, 5_400_000, 1500, 604_800_000)] == [
        "1d",
        "90m",
        "1500ms",
        "1w",
    ]
    for bad in ("", "h", "1x", "1h 30m", "-1h", None, True):
        with pytest.raises(InvalidInput):
            parse_duration(bad, field="w")


def test_a_glob_matches_names_and_an_exact_name_matches_itself_only() -> None:
    glob = make_rule("g", quantity="performance.*.accuracy", operator="<", threshold=0.8)
    assert glob.watches("d", "performance.champion.accuracy", DAY)
    assert not glob.watches("d", "performance.accuracy", DAY)
    exact = make_rule("e", quantity="drift.column.a[1]", operator=">", threshold=0)
    assert exact.watches("d", "drift.column.a[1]", DAY)  # the literal name, though [1] globs
    assert exact.watches("d", "drift.column.a1", DAY)
    plain = make_rule("p", quantity="latency.p99_ms", operator=">", threshold=0)
    assert plain.watches("d", "latency.p99_ms", DAY)
    assert not plain.watches("d", "latency.p99_ms.x", DAY)


def test_a_rule_reads_its_own_window_only_unless_it_says_any() -> None:
    daily = make_rule("d", window="24h", **GOOD)
    assert daily.watches("churn", "drift.share", DAY)
    assert not daily.watches("churn", "drift.share", DAY // 24)
    anywhere = make_rule("a", window="any", **GOOD)
    assert anywhere.watches("churn", "drift.share", DAY)
    assert anywhere.watches("churn", "drift.share", 7_123)  # an explicit range of 7.1 s
    assert anywhere.to_dict()["window"] == "any"


def test_store_rules_channels_and_their_errors(db_url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        add_rule("r", channels=["nope"], uri=db_url, **GOOD)
    assert info.value.field == "channels[0]"
    add_channel("ops", "webhook", {"url": "https://h.example.com/x", "secret_env": "S"},
                uri=db_url)  # fmt: skip
    rule = add_rule("r", channels=["ops"], window="6h", uri=db_url, **GOOD)
    assert rule.to_dict()["window"] == "6h" and rule.channels == ("ops",)
    with pytest.raises(AlreadyExists):
        add_rule("r", uri=db_url, **GOOD)
    replaced = add_rule("r", replace=True, uri=db_url, **{**GOOD, "threshold": 0.5})
    assert replaced.threshold == 0.5 and replaced.channels == ()
    add_rule("r2", channels=["ops"], uri=db_url, **GOOD)
    with pytest.raises(Conflict, match="r2"):
        remove_channel("ops", uri=db_url)
    assert enable_rule("r2", False, uri=db_url).enabled is False
    with pytest.raises(NotFound):
        enable_rule("missing", uri=db_url)
    assert [r.name for r in list_rules(uri=db_url)] == ["r", "r2"]


KEEL_TOML = """
[keel]
project = "churn"

[[monitoring.alerts]]
name = "p99"
deployment = "churn"
quantity = "latency.p99_ms"
operator = ">"
threshold = 250
window = "1h"
min_samples = 50
severity = "critical"
"""


def test_rules_declared_in_keel_toml_are_listed_and_evaluated(
    keel_home: Path, sqlite_url: str
) -> None:
    (keel_home.parent / "keel.toml").write_text(KEEL_TOML)
    [rule] = list_rules(uri=sqlite_url)
    assert (rule.name, rule.source, rule.window_ms) == ("p99", str(keel_home.parent / "keel.toml"),
                                                        3_600_000)  # fmt: skip
    events = evaluate_result("churn", "r1", {"latency.p99_ms": Quantity(400.0, 80)},
                             window_ms=3_600_000, at_ms=1, uri=sqlite_url)  # fmt: skip
    assert [(e.kind, e.rule, e.severity) for e in events] == [("fired", "p99", "critical")]
    with pytest.raises(InvalidInput) as info:
        add_rule("p99", uri=sqlite_url, **GOOD)  # the file owns that name
    assert info.value.field == "name"


def test_a_bad_rule_in_keel_toml_is_named_with_its_position(
    keel_home: Path, sqlite_url: str
) -> None:
    (keel_home.parent / "keel.toml").write_text(
        KEEL_TOML + '\n[[monitoring.alerts]]\nname = "x"\nquantity = "q"\noperator = ">"\n'
    )
    with pytest.raises(InvalidInput) as info:
        list_rules(uri=sqlite_url)
    assert info.value.field == "monitoring.alerts[1].threshold"
    (keel_home.parent / "keel.toml").write_text(KEEL_TOML.replace("window", "windw"))
    with pytest.raises(InvalidInput) as info:
        list_rules(uri=sqlite_url)
    assert info.value.field == "monitoring.alerts[0].windw"


def test_concurrent_evaluators_open_one_alert(db_url: str) -> None:
    add_rule("drift", uri=db_url, **GOOD)
    threads = 6
    barrier = threading.Barrier(threads)
    fired: list[str] = []
    errors: list[BaseException] = []

    def evaluator(i: int) -> None:
        store = SqlAlertStore(db_url)
        barrier.wait()
        try:
            events = evaluate(store, "churn", f"r{i}", {"drift.share": Quantity(0.9, 100)},
                              window_ms=DAY, at_ms=1_000 + i)  # fmt: skip
            fired.extend(e.kind for e in events)
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    workers = [threading.Thread(target=evaluator, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    assert fired == ["fired"]
    store = SqlAlertStore(db_url)
    assert [a.state for a in store.list_alerts()] == ["open"]
    assert [e.kind for e in list_alert_events(uri=db_url)] == ["fired"]


def test_the_schema_itself_refuses_a_second_unresolved_alert(db_url: str) -> None:
    store = SqlAlertStore(db_url)
    add_rule("drift", uri=db_url, **GOOD)
    evaluate(store, "churn", "r1", {"drift.share": Quantity(0.9, 100)}, window_ms=DAY, at_ms=1)
    [alert] = store.list_alerts()
    copy = {k: v for k, v in alert.to_dict().items() if k not in ("id", "opened")}

    def insert_copy(conn: sa.Connection) -> None:
        from keel.monitoring._alert_tables import alerts

        conn.execute(alerts.insert().values(copy))

    with pytest.raises(StoreError):
        store._write(insert_copy)
    resolved = {**copy, "state": "resolved", "resolved_ms": 5}
    from keel.monitoring._alert_tables import alerts

    store._write(lambda conn: conn.execute(alerts.insert().values(resolved)))  # history is fine
    assert len(store.list_alerts()) == 2
