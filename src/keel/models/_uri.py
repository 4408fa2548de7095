"""Model references: ``models:/name/3``, ``models:/name@alias``, ``models:/name`` (latest ready
version) and ``runs:/<run id>/<path>``; the CLI's short forms ``name/3`` and ``name@alias``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.errors import InvalidInput
from keel.models import _names

_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed reference: a registered version (``name`` with ``version`` or ``alias``; both
    None means the latest ready version) or files logged to a run (``run_id`` and ``path``)."""

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    path: str | None = None

    @property
    def is_run(self) -> bool:
        return self.run_id is not None

    def __str__(self) -> str:
        if self.run_id is not None:
            return f"runs:/{self.run_id}/{self.path}"
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}@{self.alias or 'latest'}"


def _model_part(text: str, original: str) -> ModelRef:
    if "@" in text:
        base, _, alias = text.partition("@")
        name = _names.name(base, "uri")
        if alias == "latest":
            return ModelRef(name=name)
        return ModelRef(name=name, alias=_names.alias(alias))
    if "/" in text:
        base, _, number = text.partition("/")
        if not number.isdigit() or len(number) > 9 or int(number) < 1:
            raise InvalidInput(f"{original!r}: the version must be a number >= 1", field="uri")
        return ModelRef(name=_names.name(base, "uri"), version=int(number))
    return ModelRef(name=_names.name(text, "uri"))


def parse_uri(uri: object) -> ModelRef:
    """Parse a model reference; ``InvalidInput`` (field ``uri``) says what a good one is."""
    if not isinstance(uri, str):
        raise InvalidInput(f"must be a string, got {type(uri).__name__}", field="uri")
    if uri.startswith("runs:/"):
        from keel.artifacts import safe_relpath

        rest = uri[len("runs:/") :].lstrip("/")
        run_id, _, path = rest.partition("/")
        if not _RUN_ID.fullmatch(run_id):
            raise InvalidInput(f"{uri!r}: expected runs:/<run id>/<path>", field="uri")
        return ModelRef(run_id=run_id, path=safe_relpath(path or "model", field="uri"))
    if uri.startswith("models:/"):
        return _model_part(uri[len("models:/") :], uri)
    if ":" in uri:
        raise InvalidInput(
            f"{uri!r}: expected models:/name/3, models:/name@alias or runs:/<id>/<path>",
            field="uri",
        )
    return _model_part(uri, uri)
