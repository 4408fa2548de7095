"""Checks of model names, aliases, tag keys and version numbers: a bad one is ``InvalidInput``
naming its field."""

from __future__ import annotations

from collections.abc import Mapping

from keel._names import checked_name
from keel.errors import InvalidInput

MAX_TAG_VALUE = 5000
MAX_TEXT = 100_000


def name(value: object, field: str = "name") -> str:
    """A model name, alias or tag key (the rule of ``keel._names``: ``/`` and ``@`` separate
    the parts of a model reference)."""
    return checked_name(value, field=field)


def alias(value: object) -> str:
    checked = name(value, "alias")
    if checked == "latest" or checked.isdigit():
        raise InvalidInput(f"{checked!r} is reserved (latest, version numbers)", field="alias")
    return checked


def version(value: object, field: str = "version") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"must be an integer >= 1, got {value!r}", field=field)
    return value


def text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidInput(f"must be under {MAX_TEXT} characters, without NUL", field=field)
    return value


def tags(values: Mapping[str, object] | None, field: str = "tags") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (values or {}).items():
        name(key, f"{field}.key")
        shown = value if isinstance(value, str) else str(value)
        if len(shown) > MAX_TAG_VALUE or "\x00" in shown:
            raise InvalidInput(f"longer than {MAX_TAG_VALUE} characters or has NUL", field=key)
        out[key] = shown
    return out
