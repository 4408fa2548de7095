"""Alert rules: what they hold, how they are checked, and which quantities they watch.

A rule is a threshold on a monitored quantity (names in ``keel.monitoring._quantities``)::

    name        = "churn-drift"          # unique; letters, digits, . _ -
    deployment  = "churn"                # or "*" for every deployment
    quantity    = "drift.column.*"       # an exact name, or a glob (* ? [..])
    operator    = ">"                    # > >= < <=
    threshold   = 0.2
    window      = "24h"                  # the monitor window it reads ("any": every result)
    min_samples = 500                    # n below this (or no value) is "insufficient"
    severity    = "warning"              # info | warning | critical
    channels    = ["ops-webhook"]
    cooldown    = "1h"                   # least time between notifications of one open alert
    enabled     = true

Rules live in the metadata database (``keel alerts rules add``) and may also be declared in the
project's ``keel.toml`` as ``[[monitoring.alerts]]`` tables with the keys above. File rules are
read at every evaluation (edit the file, the next run uses it) and are not stored; a name used
by both is an error that names it.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel._names import checked_name
from keel.errors import InvalidInput

OPERATORS = (">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "critical")
MAX_CHANNELS = 20
MAX_QUANTITY = 250
MAX_WINDOW_MS = 366 * 86_400_000
DEFAULT_WINDOW_MS = 86_400_000
DEFAULT_COOLDOWN_MS = 3_600_000
RULE_KEYS = frozenset(
    {
        "name",
        "deployment",
        "quantity",
        "operator",
        "threshold",
        "window",
        "min_samples",
        "severity",
        "channels",
        "cooldown",
        "enabled",
    }
)
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration(value: object, *, field: str) -> int:
    """Milliseconds from ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"1w"`` (or ``"1h30m"``),
    or a whole number of milliseconds."""
    if isinstance(value, bool):
        raise InvalidInput(f"not a duration: {value!r}", field=field)
    if isinstance(value, int):
        total = value
    elif isinstance(value, str):
        text = value.strip().lower()
        pieces = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in pieces) != text:
            raise InvalidInput(
                f"not a duration: {value!r}; write e.g. 30m, 24h, 7d or 1h30m", field=field
            )
        total = sum(int(n) * _UNIT_MS[u] for n, u in pieces)
    else:
        raise InvalidInput(f"not a duration: {value!r}; write e.g. 30m, 24h, 7d", field=field)
    if total < 0 or total > MAX_WINDOW_MS:
        raise InvalidInput("must be between 0 and 366 days", field=field)
    return total


def format_duration(ms: int) -> str:
    """The shortest exact spelling: ``86400000`` -> ``"1d"``, ``5400000`` -> ``"90m"``."""
    for unit in ("w", "d", "h", "m", "s"):
        if ms and ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


ANY_WINDOW = 0  # stored window_ms of a rule that reads results over any window


def window_text(window_ms: int) -> str:
    """A rule's window as written: a duration, or ``any``."""
    return "any" if window_ms == ANY_WINDOW else format_duration(window_ms)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A threshold on a monitored quantity; see the module docstring for each field."""

    name: str
    quantity: str
    operator: str
    threshold: float
    deployment: str = "*"
    window_ms: int = DEFAULT_WINDOW_MS
    min_samples: int = 1
    severity: str = "warning"
    channels: tuple[str, ...] = ()
    cooldown_ms: int = DEFAULT_COOLDOWN_MS
    enabled: bool = True
    source: str = "db"  # "db" or the path of the keel.toml that declares it
    created_ms: int = 0
    updated_ms: int = 0
    _is_glob: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_is_glob", any(c in self.quantity for c in "*?["))

    def watches(self, deployment: str, quantity: str, window_ms: int) -> bool:
        """Whether this rule reads ``quantity`` of ``deployment`` over a window of ``window_ms``."""
        if not self.enabled or self.window_ms not in (ANY_WINDOW, window_ms):
            return False
        if self.deployment not in ("*", deployment):
            return False
        if quantity == self.quantity:
            return True  # also a column name holding glob characters, taken literally
        return self._is_glob and fnmatch.fnmatchcase(quantity, self.quantity)

    def breached(self, value: float) -> bool:
        if self.operator == ">":
            return value > self.threshold
        if self.operator == ">=":
            return value >= self.threshold
        if self.operator == "<":
            return value < self.threshold
        return value <= self.threshold

    @property
    def condition(self) -> str:
        return f"{self.quantity} {self.operator} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "quantity": self.quantity,
            "operator": self.operator,
            "threshold": self.threshold,
            "window": window_text(self.window_ms),
            "min_samples": self.min_samples,
            "severity": self.severity,
            "channels": list(self.channels),
            "cooldown": format_duration(self.cooldown_ms),
            "enabled": self.enabled,
            "source": self.source,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
        }


def make_rule(
    name: object,
    *,
    quantity: object,
    operator: object,
    threshold: object,
    deployment: object = "*",
    window: object = "24h",
    min_samples: object = 1,
    severity: object = "warning",
    channels: object = (),
    cooldown: object = "1h",
    enabled: object = True,
    source: str = "db",
    where: str = "",
) -> AlertRule:
    """A checked rule; a bad value is ``InvalidInput`` naming the field (prefixed by ``where``,
    e.g. ``monitoring.alerts[2].threshold`` for a file rule)."""
    checked = checked_name(name, field=f"{where}name", max_length=128)
    if deployment != "*":
        deployment = checked_name(deployment, field=f"{where}deployment", max_length=128)
    if not isinstance(quantity, str) or not quantity.strip() or not quantity.isprintable():
        raise InvalidInput(
            "must be a quantity name such as drift.share or a glob such as drift.column.*",
            field=f"{where}quantity",
        )
    if len(quantity) > MAX_QUANTITY:
        raise InvalidInput(f"longer than {MAX_QUANTITY} characters", field=f"{where}quantity")
    if operator not in OPERATORS:
        raise InvalidInput(
            f"must be one of {' '.join(OPERATORS)}, got {operator!r}", field=f"{where}operator"
        )
    if isinstance(threshold, str):
        try:
            threshold = float(threshold)
        except ValueError:
            raise InvalidInput(
                f"must be a number, got {threshold!r}", field=f"{where}threshold"
            ) from None
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
    ):
        raise InvalidInput(f"must be a finite number, got {threshold!r}", field=f"{where}threshold")
    window_ms = ANY_WINDOW if window == "any" else parse_duration(window, field=f"{where}window")
    if window_ms < 0 or (window_ms == 0 and window != "any"):
        raise InvalidInput("must be longer than 0, or 'any'", field=f"{where}window")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 0:
        raise InvalidInput(
            f"must be a whole number >= 0, got {min_samples!r}", field=f"{where}min_samples"
        )
    if severity not in SEVERITIES:
        raise InvalidInput(
            f"must be one of {', '.join(SEVERITIES)}, got {severity!r}", field=f"{where}severity"
        )
    if isinstance(channels, str) or not isinstance(channels, Sequence):
        raise InvalidInput("must be a list of channel names", field=f"{where}channels")
    if len(channels) > MAX_CHANNELS:
        raise InvalidInput(f"at most {MAX_CHANNELS} channels", field=f"{where}channels")
    names = tuple(
        checked_name(c, field=f"{where}channels[{i}]", max_length=128)
        for i, c in enumerate(channels)
    )
    if len(set(names)) != len(names):
        raise InvalidInput("names a channel twice", field=f"{where}channels")
    cooldown_ms = parse_duration(cooldown, field=f"{where}cooldown")
    if not isinstance(enabled, bool):
        raise InvalidInput(f"must be true or false, got {enabled!r}", field=f"{where}enabled")
    return AlertRule(
        name=checked,
        quantity=quantity,
        operator=operator,
        threshold=float(threshold),
        deployment=str(deployment),
        window_ms=window_ms,
        min_samples=min_samples,
        severity=severity,
        channels=names,
        cooldown_ms=cooldown_ms,
        enabled=enabled,
        source=source,
    )


def parse_rule(table: Mapping[str, Any], *, where: str = "", source: str = "db") -> AlertRule:
    """A rule from a mapping with the keys of the module docstring (a TOML table, JSON)."""
    if not isinstance(table, Mapping):
        raise InvalidInput("must be a table of rule fields", field=where.rstrip(".") or "rule")
    unknown = set(table) - RULE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise InvalidInput(
            f"unknown rule field {key!r}; known: {', '.join(sorted(RULE_KEYS))}",
            field=f"{where}{key}",
        )
    for key in ("name", "quantity", "operator", "threshold"):
        if key not in table:
            raise InvalidInput("required", field=f"{where}{key}")
    values = {k: v for k, v in table.items() if k != "name"}
    return make_rule(table["name"], source=source, where=where, **values)


def project_file() -> Path:
    """The project's ``keel.toml``: beside the Keel home folder (as promotion gates)."""
    from keel.config import PROJECT_FILE, get_settings

    return get_settings().home.parent / PROJECT_FILE


def load_file_rules(path: str | Path | None = None) -> list[AlertRule]:
    """The ``[[monitoring.alerts]]`` rules of ``path`` (default: the project's ``keel.toml``;
    a missing default file means none)."""
    file = Path(path) if path is not None else project_file()
    if not file.is_file():
        if path is not None:
            raise InvalidInput(f"no file at {file}", field="path")
        return []
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file} is not valid TOML: {exc}", field="monitoring.alerts") from exc
    monitoring = document.get("monitoring", {})
    if not isinstance(monitoring, Mapping):
        raise InvalidInput("must be a table", field="monitoring")
    tables = monitoring.get("alerts", [])
    if not isinstance(tables, list):
        raise InvalidInput("must be an array of tables ([[monitoring.alerts]])", field="alerts")
    rules = [
        parse_rule(t, where=f"monitoring.alerts[{i}].", source=str(file))
        for i, t in enumerate(tables)
    ]
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise InvalidInput(
                f"rule name {rule.name!r} is declared twice", field=f"monitoring.alerts[{i}].name"
            )
        seen.add(rule.name)
    return rules
