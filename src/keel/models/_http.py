"""``HttpModelRegistry``: the model registry of a team server, over HTTP.

The server's ``/api/v1/models`` routes (``keel.server.routes.models``) call its SQL registry.
Names, aliases and versions travel in the query or the body, never as path segments, so a bad
one meets the registry's own check and error. The JSON shapes of the records are defined here,
once, for both sides; decoders raise ``InvalidInput`` naming the field, because on the server
their input is untrusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from keel._http import ServerBacked
from keel.errors import InvalidInput
from keel.models._base import ModelRegistry
from keel.models._records import (
    DatasetInput,
    ModelEnv,
    ModelFile,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    Signature,
    VersionStatus,
)

API = "/api/v1/models"
T = TypeVar("T")


def decoded(build: Callable[[], T], field: str = "body") -> T:
    """``build()``, with a malformed body's ``KeyError``/``TypeError``/``ValueError`` raised
    as ``InvalidInput`` naming ``field``."""
    try:
        return build()
    except InvalidInput:
        raise
    except KeyError as exc:
        raise InvalidInput(f"missing {exc.args[0]!r}", field=field) from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"malformed: {exc}", field=field) from exc


def _str_map(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("must be an object of strings", field=field)
    return {str(k): str(v) for k, v in value.items()}


def files_from_wire(value: object, field: str = "files") -> tuple[ModelFile, ...]:
    if not isinstance(value, list):
        raise InvalidInput("must be a list", field=field)

    def build() -> tuple[ModelFile, ...]:
        return tuple(ModelFile(str(f["path"]), str(f["digest"]), int(f["size"])) for f in value)

    return decoded(build, field)


def model_from_wire(d: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=d["name"],
        description=d["description"],
        tags=dict(d["tags"]),
        aliases={str(k): int(v) for k, v in d["aliases"].items()},
        latest_version=int(d["latest_version"]),
        created_ms=int(d["created_ms"]),
        updated_ms=int(d["updated_ms"]),
    )


def version_from_wire(d: Mapping[str, Any]) -> ModelVersion:
    signature = d.get("signature")
    return ModelVersion(
        name=d["name"],
        version=int(d["version"]),
        status=VersionStatus(d["status"]),
        flavor=d["flavor"],
        files=tuple(ModelFile(f["path"], f["digest"], int(f["size"])) for f in d["files"]),
        signature=None if signature is None else Signature.from_dict(signature),
        input_example=d.get("input_example"),
        environment=ModelEnv.from_dict(d.get("environment") or {}),
        size=int(d["size"]),
        latency_ms=d.get("latency_ms"),
        options=dict(d.get("options") or {}),
        requires_trust=bool(d["requires_trust"]),
        trusted=bool(d["trusted"]),
        trust_reason=d.get("trust_reason", ""),
        run_id=d.get("run_id"),
        source=d.get("source", ""),
        datasets=tuple(DatasetInput.from_dict(x) for x in d.get("datasets", ())),
        git_commit=d.get("git_commit"),
        description=d.get("description", ""),
        tags=dict(d.get("tags") or {}),
        aliases=tuple(d.get("aliases", ())),
        error=d.get("error", ""),
        created_ms=int(d.get("created_ms", 0)),
        updated_ms=int(d.get("updated_ms", 0)),
    )


def new_version_to_wire(new: NewModelVersion) -> dict[str, Any]:
    return {
        "name": new.name,
        "flavor": new.flavor,
        "signature": None if new.signature is None else new.signature.to_dict(),
        "input_example": new.input_example,
        "environment": new.environment.to_dict(),
        "latency_ms": new.latency_ms,
        "options": dict(new.options),
        "requires_trust": new.requires_trust,
        "run_id": new.run_id,
        "source": new.source,
        "datasets": [d.to_dict() for d in new.datasets],
        "git_commit": new.git_commit,
        "description": new.description,
        "tags": dict(new.tags),
    }


def new_version_from_wire(data: Mapping[str, Any]) -> NewModelVersion:
    """A ``NewModelVersion`` from an untrusted body (the registry checks every value)."""
    unknown = set(data) - set(NewModelVersion.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}", field="body")

    def build() -> NewModelVersion:
        signature = data.get("signature")
        latency = data.get("latency_ms")
        if latency is not None and (
            isinstance(latency, bool) or not isinstance(latency, int | float)
        ):
            raise InvalidInput("must be a number", field="latency_ms")
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise InvalidInput("must be an object", field="options")
        return NewModelVersion(
            name=data["name"],
            flavor=data["flavor"],
            signature=None if signature is None else Signature.from_dict(signature),
            input_example=data.get("input_example"),
            environment=ModelEnv.from_dict(data.get("environment") or {}),
            latency_ms=None if latency is None else float(latency),
            options=options,
            requires_trust=bool(data.get("requires_trust", False)),
            run_id=data.get("run_id"),
            source=str(data.get("source", "")),
            datasets=tuple(DatasetInput.from_dict(x) for x in data.get("datasets") or ()),
            git_commit=data.get("git_commit"),
            description=str(data.get("description", "")),
            tags=_str_map(data.get("tags"), "tags"),
        )

    return decoded(build)


class HttpModelRegistry(ServerBacked, ModelRegistry):
    """The model registry behind the Keel server at ``url`` (token: ``KEEL_TOKEN``)."""

    # -- models ----------------------------------------------------------------------------

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        got = self.http.call("POST", API, body=body, idempotent_create=True)
        return model_from_wire(got)

    def get_model(self, name: str) -> RegisteredModel:
        return model_from_wire(self.http.call("GET", f"{API}/model", params={"name": name}))

    def list_models(self) -> list[RegisteredModel]:
        return [model_from_wire(m) for m in self.http.call("GET", API)["models"]]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        body = {
            "name": name,
            "description": description,
            "tags": None if tags is None else dict(tags),
            "delete_tags": list(delete_tags),
        }
        return model_from_wire(self.http.call("PATCH", f"{API}/model", body=body))

    # -- versions --------------------------------------------------------------------------

    def create_version(self, new: NewModelVersion) -> ModelVersion:
        body = new_version_to_wire(new)
        got = self.http.call("POST", f"{API}/versions", body=body, idempotent_create=True)
        return version_from_wire(got)

    def complete_version(
        self,
        name: str,
        version: int,
        *,
        files: Sequence[ModelFile] = (),
        error: str | None = None,
    ) -> ModelVersion:
        body = {
            "name": name,
            "version": version,
            "files": [f.to_dict() for f in files],
            "error": error,
        }
        got = self.http.call("POST", f"{API}/versions/complete", body=body)
        return version_from_wire(got)

    def get_version(self, name: str, version: int) -> ModelVersion:
        params = {"name": name, "version": version}
        return version_from_wire(self.http.call("GET", f"{API}/version", params=params))

    def list_versions(
        self,
        name: str | None = None,
        *,
        run_ids: Iterable[str] | None = None,
        status: VersionStatus | None = None,
    ) -> list[ModelVersion]:
        body: dict[str, Any] = {
            "name": name,
            "run_ids": None if run_ids is None else list(run_ids),
            "status": None if status is None else str(status),
        }
        # A POST: a list of run ids may not fit in a query string (the server audits it not).
        got = self.http.call("POST", f"{API}/versions/search", body=body)
        return [version_from_wire(v) for v in got["versions"]]

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        body = {
            "name": name,
            "version": version,
            "description": description,
            "tags": None if tags is None else dict(tags),
            "delete_tags": list(delete_tags),
        }
        return version_from_wire(self.http.call("PATCH", f"{API}/version", body=body))

    def mark_trusted(
        self, name: str, version: int, *, reason: str, trusted: bool = True
    ) -> ModelVersion:
        body = {"name": name, "version": version, "reason": reason, "trusted": trusted}
        return version_from_wire(self.http.call("POST", f"{API}/trust", body=body))

    def referenced_digests(self) -> Iterator[str]:
        yield from self.http.call("GET", f"{API}/referenced-digests")["digests"]

    # -- aliases ---------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        body = {"name": name, "alias": alias, "version": version}
        return version_from_wire(self.http.call("PUT", f"{API}/aliases", body=body))

    def delete_alias(self, name: str, alias: str) -> None:
        self.http.call("DELETE", f"{API}/aliases", params={"name": name, "alias": alias})

    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        params = {"name": name, "alias": alias}
        return version_from_wire(self.http.call("GET", f"{API}/aliases", params=params))
