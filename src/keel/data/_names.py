"""Checks of dataset names, tags and refs: a bad one is ``InvalidInput`` naming its field."""

from __future__ import annotations

import re

from keel.errors import InvalidInput

MAX_NAME = 250
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION = re.compile(r"v([0-9]{1,9})")


def name(value: object, field: str = "name") -> str:
    """A dataset name or tag: letters, digits, ``.``, ``_``, ``-``; no path characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    if not value:
        raise InvalidInput("must not be empty", field=field)
    if len(value) > MAX_NAME:
        raise InvalidInput(f"longer than {MAX_NAME} characters", field=field)
    if not _NAME.fullmatch(value) or value in (".", ".."):
        raise InvalidInput(
            f"{value!r} may hold only letters, digits, '.', '_' and '-' and must start with a "
            "letter or digit (no '/', '\\', '@', spaces)",
            field=field,
        )
    return value


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
