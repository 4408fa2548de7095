"""``HttpBackend``: the artifact store of a team server, as an ``ArtifactBackend`` over HTTP.

A client pointed at a server (``KEEL_TRACKING_URI=http(s)://…``) stores bytes through it; the
server owns every storage path, so the client names only keys. Two families of routes:

- ``/api/v1/artifacts/objects/{digest}`` for content-addressed objects (readable by
  a caller who can read a project referencing the object, or who uploaded it; see docs/remote.md):
  the server hashes an upload as it writes and publishes it only if the bytes hash to the
  digest in the URL; a download is hashed again as it is sent, and the connection is cut if
  the stored bytes are corrupt, which the reader here raises as ``IntegrityError``.
- ``/api/v1/artifacts/keys/{key}`` for raw keys (global admins): backups, repairs, and the
  backend conformance suite, which corrupts objects on purpose through the backend.

``verified=True`` (the default) sends object keys to the first family and everything else to
the second; ``verified=False`` uses raw keys for everything.

Uploads: what a writer is given is spooled (in memory up to ``SPOOL_MEMORY`` bytes, then in a
temp file), and sent on ``commit()`` as one streamed request with its length, so memory stays
constant whatever the size, an aborted writer never reaches the server, and a failed upload is
retried from the spool. The server writes through the backend's atomic publish: a connection
dropped mid-upload leaves nothing visible.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx

from keel._hashing import CHUNK
from keel._http import HttpClient, RetryPolicy
from keel.artifacts._base import ArtifactBackend, BackendWriter, KeyInfo
from keel.artifacts._paths import digest_from_key, safe_relpath
from keel.errors import NotFound, StoreUnavailable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

API = "/api/v1/artifacts"
OCTETS = "application/octet-stream"
SIZE_HEADER = "X-Keel-Size"
SPOOL_MEMORY = 1 << 20


class _SpoolWriter(BackendWriter):
    def __init__(self, backend: HttpBackend, key: str) -> None:
        super().__init__(key)
        self._backend = backend
        self._spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._size = 0

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._spool.write(data)
        self._size += len(data)

    def _chunks(self) -> Iterator[bytes]:
        self._spool.seek(0)
        while chunk := self._spool.read(CHUNK):
            yield chunk

    def _commit(self) -> None:
        try:
            self._backend.http.request(
                "PUT",
                self._backend.path_of(self.key),
                content=self._chunks,
                headers={"Content-Type": OCTETS, "Content-Length": str(self._size)},
            )
        finally:
            self._spool.close()

    def _abort(self) -> None:
        self._spool.close()


class _ResponseReader(io.RawIOBase):
    """A response body as a binary stream, read as the caller asks for it."""

    def __init__(
        self, context: AbstractContextManager[httpx.Response], *, key: str, object_: bool
    ) -> None:
        self._context = context
        self._response = context.__enter__()
        self._chunks = self._response.iter_raw(CHUNK)
        self._pending = memoryview(b"")
        self._key = key
        self._object = object_
        self._received = 0

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes:
        try:
            chunk = next(self._chunks, b"")
        except httpx.HTTPError as exc:
            # The server checks an object before sending it; one that changes while it is
            # sent fails the check at the end and the server cuts the response.
            hint = " (or the server found the stored bytes corrupt)" if self._object else ""
            raise StoreUnavailable(
                f"the download of {self._key!r} broke off after {self._received} bytes{hint}: {exc}"
            ) from exc
        self._received += len(chunk)
        return chunk

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if not self._pending:
            self._pending = memoryview(self._next())
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._pending:
            self._pending = memoryview(self._next())
        out = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        return out

    def readall(self) -> bytes:
        parts = [bytes(self._pending)]
        self._pending = memoryview(b"")
        while chunk := self._next():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._context.__exit__(None, None, None)
        super().close()


class HttpBackend(ArtifactBackend):
    """The artifact store of the Keel server at ``url`` (token: ``KEEL_TOKEN``)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        verified: bool = True,
        timeout_s: float = 300.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.uri = url.rstrip("/")
        self.verified = verified
        self.http = HttpClient(self.uri, token=token, timeout_s=timeout_s, retry=retry)

    def __repr__(self) -> str:
        return f"HttpBackend({self.uri!r})"

    def close(self) -> None:
        self.http.close()

    def path_of(self, key: str) -> str:
        """The route of ``key``: its object route if it is an object key (and verified)."""
        digest = digest_from_key(key) if self.verified else None
        if digest is not None:
            return f"{API}/objects/{digest}"
        return f"{API}/keys/{quote(key, safe='/')}"

    def open_writer(self, key: str) -> BackendWriter:
        return _SpoolWriter(self, safe_relpath(key, field="key"))

    def open_reader(self, key: str) -> BinaryIO:
        key = safe_relpath(key, field="key")
        context = self.http.stream("GET", self.path_of(key))
        object_ = self.path_of(key).startswith(f"{API}/objects/")
        return _ResponseReader(context, key=key, object_=object_)  # type: ignore[return-value]

    def _head(self, key: str) -> httpx.Response:
        return self.http.request("HEAD", self.path_of(safe_relpath(key, field="key")))

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key).headers[SIZE_HEADER])

    def delete(self, key: str) -> None:
        key = safe_relpath(key, field="key")
        self.http.request("DELETE", f"{API}/keys/{quote(key, safe='/')}")

    def iter_keys(self, prefix: str = "") -> Iterator[KeyInfo]:
        params = {"prefix": prefix} if prefix not in ("", ".", "/") else {}
        got = self.http.call("GET", f"{API}/keys", params=params)
        for key, size, modified_ms in got["keys"]:
            yield KeyInfo(key, size, modified_ms)

    def purge_incomplete(self, *, older_than_s: float, dry_run: bool = True) -> int:
        body = {"older_than_s": older_than_s, "dry_run": dry_run}
        return int(self.http.call("POST", f"{API}/purge-incomplete", body=body)["count"])
