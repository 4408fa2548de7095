"""The one rule for the names users give datasets, models, aliases, tags and deployments.

Such names become parts of references (``churn@v3``, ``models:/churn@champion``) and of storage
keys (the prediction log's ``deployment=<name>/`` folders), so they are kept to letters, digits,
``.``, ``_`` and ``-``, start with a letter or digit, and never hold ``/``, ``\\``, ``@`` or
spaces. A bad one is ``InvalidInput`` naming its field.
"""

from __future__ import annotations

import re

from keel.errors import InvalidInput

MAX_NAME = 250
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def checked_name(value: object, *, field: str = "name", max_length: int = MAX_NAME) -> str:
    """``value`` if it is a valid name, else ``InvalidInput`` naming ``field``."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    if not value:
        raise InvalidInput("must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"longer than {max_length} characters", field=field)
    if not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{value!r} may hold only letters, digits, '.', '_' and '-' and must start with a "
            "letter or digit (no '/', '\\', '@', spaces)",
            field=field,
        )
    return value
