"""Checks of dataset names, tags and refs: a bad one is ``InvalidInput`` naming its field."""

from __future__ import annotations

import re

from keel._names import checked_name
from keel.errors import InvalidInput

_VERSION = re.compile(r"v([0-9]{1,9})")


def name(value: object, field: str = "name") -> str:
    """A dataset name or tag (the rule of ``keel._names``)."""
    return checked_name(value, field=field)


def tag(value: object) -> str:
    checked = name(value, "tag")
    if checked == "latest" or _VERSION.fullmatch(checked):
        raise InvalidInput(f"{checked!r} is reserved (latest, vN)", field="tag")
    return checked


def parse_ref(ref: object) -> tuple[str, int | str | None]:
    """``name`` / ``name@latest`` -> (name, None); ``name@v3`` -> (name, 3); ``name@t`` -> tag."""
    if not isinstance(ref, str):
        raise InvalidInput(f"must be a string, got {type(ref).__name__}", field="ref")
    base, sep, selector = ref.partition("@")
    checked = name(base, "ref")
    if not sep or selector == "latest":
        return checked, None
    match = _VERSION.fullmatch(selector)
    if match:
        return checked, int(match.group(1))
    return checked, name(selector, "ref")
