"""``HttpDataStore``: dataset version metadata of a team server, over HTTP.

The server's ``/api/v1/data`` routes (``keel.server.routes.data``) call its SQL data store;
bytes go through the artifact routes (``keel.artifacts._http``). Names and refs travel in the
query or the body, never as path segments, so a bad one meets the store's own check and error.
The JSON shapes of the records are defined here, once, for both sides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from keel._http import ServerBacked
from keel.data._base import DataStore
from keel.data._records import DatasetVersion, NewVersion
from keel.errors import InvalidInput

API = "/api/v1/data"
_TUPLES = ("schema", "key", "tags", "objects")


def version_to_wire(v: DatasetVersion) -> dict[str, Any]:
    return {**v.to_dict(), "source_digest": v.source_digest}


def version_from_wire(d: Mapping[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        name=d["name"],
        version=d["version"],
        digest=d["digest"],
        kind=d["kind"],
        size=d["size"],
        rows=d["rows"],
        files=d["files"],
        schema=tuple((c, t) for c, t in d["schema"]),
        profile=d["profile"],
        description=d["description"],
        key=tuple(d["key"]),
        source_uri=d["source_uri"],
        produced_by=d["produced_by"],
        source_digest=d.get("source_digest"),
        tags=tuple(d["tags"]),
        created_ms=d["created_ms"],
        deleted=d["deleted"],
        existed=d["existed"],
    )


def new_to_wire(new: NewVersion) -> dict[str, Any]:
    return {
        "name": new.name,
        "digest": new.digest,
        "kind": new.kind,
        "size": new.size,
        "rows": new.rows,
        "files": new.files,
        "schema": [list(c) for c in new.schema],
        "profile": new.profile,
        "description": new.description,
        "key": list(new.key),
        "source_uri": new.source_uri,
        "produced_by": new.produced_by,
        "source_digest": new.source_digest,
        "tags": list(new.tags),
        "objects": list(new.objects),
    }


def new_from_wire(data: object) -> NewVersion:
    """A ``NewVersion`` from an untrusted body: known fields only, lists made tuples; the
    store checks every value."""
    if not isinstance(data, dict):
        raise InvalidInput("expected a JSON object", field="body")
    fields = dict(data)
    unknown = set(fields) - set(NewVersion.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}", field="body")
    for name in _TUPLES:
        if isinstance(fields.get(name), list):
            items = fields[name]
            if name == "schema":
                items = [tuple(c) if isinstance(c, list) else c for c in items]
            fields[name] = tuple(items)
    try:
        return NewVersion(**fields)
    except TypeError as exc:
        raise InvalidInput(f"incomplete version: {exc}", field="body") from exc


class HttpDataStore(ServerBacked, DataStore):
    """The data store behind the Keel server at ``url`` (token: ``KEEL_TOKEN``)."""

    def create_version(self, new: NewVersion) -> DatasetVersion:
        got = self.http.call(
            "POST", f"{API}/versions", body=new_to_wire(new), idempotent_create=True
        )
        return version_from_wire(got)

    def resolve(self, ref: str) -> DatasetVersion:
        return version_from_wire(self.http.call("GET", f"{API}/resolve", params={"ref": ref}))

    def find_by_source(self, name: str, source_digest: str) -> DatasetVersion | None:
        params = {"name": name, "source_digest": source_digest}
        got = self.http.call("GET", f"{API}/find-by-source", params=params)
        return None if got["version"] is None else version_from_wire(got["version"])

    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        params = {} if name is None else {"name": name}
        got = self.http.call("GET", f"{API}/versions", params=params)
        return [version_from_wire(v) for v in got["versions"]]

    def set_tag(self, ref: str, tag: str) -> DatasetVersion:
        body = {"ref": ref, "tag": tag}
        return version_from_wire(self.http.call("POST", f"{API}/tags", body=body))

    def delete_version(self, ref: str) -> DatasetVersion:
        return version_from_wire(self.http.call("DELETE", f"{API}/versions", params={"ref": ref}))

    def referenced_digests(self) -> Iterator[str]:
        yield from self.http.call("GET", f"{API}/referenced-digests")["digests"]

    def save_contract(self, name: str, text: str) -> int:
        body = {"name": name, "text": text}
        got = self.http.call("POST", f"{API}/contracts", body=body, idempotent_create=True)
        return int(got["version"])

    def get_contract(self, name: str, version: int | None = None) -> tuple[int, str]:
        params: dict[str, object] = {"name": name}
        if version is not None:
            params["version"] = version
        got = self.http.call("GET", f"{API}/contracts", params=params)
        return int(got["version"]), str(got["text"])
