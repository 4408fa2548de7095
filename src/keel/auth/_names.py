"""Names the auth store compares: usernames and project names.

Usernames are normalised to Unicode NFC, then must be 1-64 characters of ASCII letters, digits,
``.``, ``_`` and ``-``, starting with a letter or digit. Case is kept for display and ignored
for comparison: the store keeps a casefolded key under a unique index, so ``Alice`` and
``alice`` are one account. Letters outside ASCII are refused on purpose: look-alikes from other
scripts (Cyrillic ``\\u0430`` beside Latin ``a``) would let two accounts display identically, and
telling them apart needs confusable tables Keel does not carry.

Project names follow the rule ``keel.tracking`` applies when it creates a project (1-250
characters, no control characters, compared exactly), so a grant names the same project a run
is logged to.
"""

from __future__ import annotations

import re
import unicodedata

from keel.errors import InvalidInput

MAX_USERNAME = 64
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def username(value: object, field: str = "username") -> tuple[str, str]:
    """``(display, key)`` for a username: the NFC form and its casefolded comparison key."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    display = unicodedata.normalize("NFC", value.strip())
    if not display:
        raise InvalidInput("must not be empty", field=field)
    if len(display) > MAX_USERNAME:
        raise InvalidInput(f"longer than {MAX_USERNAME} characters", field=field)
    if not _USERNAME.fullmatch(display):
        raise InvalidInput(
            "use ASCII letters, digits, '.', '_' and '-', starting with a letter or digit",
            field=field,
        )
    return display, display.casefold()


def username_key(value: str) -> str:
    """The comparison key of a username-like string, for counters and lookups of names that
    may not be valid usernames at all (a failed login with garbage still gets counted).
    Control characters become ``?``: PostgreSQL text cannot hold NUL, and logs should not
    carry terminal escapes."""
    folded = unicodedata.normalize("NFC", value.strip()).casefold()[:200]
    return "".join(c if c.isprintable() else "?" for c in folded)


def project(value: object, field: str = "project") -> str:
    """A project name by the tracking store's rule (one rule, kept where projects are made)."""
    from keel.tracking._sql_validate import name

    return name(value, field)
