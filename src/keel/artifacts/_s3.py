"""An S3 (or S3-compatible: MinIO, Ceph, moto) bucket prefix as an artifact backend.

s3fs supplies the authenticated client (credentials, region and endpoint from the usual AWS
variables, ``AWS_ENDPOINT_URL`` included) and the ranged reader. Writes drive the multipart API
directly rather than through ``S3File``, whose ``close()`` (and ``__del__``) completes the
upload: here only ``commit()`` completes it, so an exception, a forgotten writer or a killed
process leaves an incomplete upload that no listing shows and ``purge_incomplete`` aborts.
Every call goes straight to S3; s3fs's listing cache is off so no answer is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

from keel._time import now_ms
from keel.artifacts._base import ArtifactBackend, BackendWriter, KeyInfo
from keel.artifacts._paths import safe_relpath
from keel.errors import ConfigError, MissingDependency, NotFound, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# 8 MiB parts, as boto3 uses: few requests, and the only buffer a writer holds.
PART_SIZE = 8 << 20
READ_BLOCK = 4 << 20


def _transient_types() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    return (
        BotoConnectionError,
        ConnectTimeoutError,
        ReadTimeoutError,
        ConnectionError,
        TimeoutError,
    )


def _translate(exc: BaseException, what: str) -> StoreError | NotFound | None:
    """The ``keel.errors`` form of a client error, or None for a programming error."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{what}: not found")
    if isinstance(exc, (*_transient_types(), asyncio.TimeoutError)):
        return StoreUnavailable(f"{what}: S3 unreachable ({type(exc).__name__}: {exc})")
    if isinstance(exc, OSError | BotoCoreError | ClientError):
        return StoreError(f"{what}: {type(exc).__name__}: {exc}")
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp ships with s3fs
        return None
    if isinstance(exc, aiohttp.ClientError):
        return StoreUnavailable(f"{what}: S3 unreachable ({type(exc).__name__}: {exc})")
    return None


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        translated = _translate(exc, what)
        if translated is None:
            raise
        raise translated from exc


class _S3Reader(io.RawIOBase):
    """An ``S3File`` whose errors arrive as ``keel.errors``."""

    def __init__(self, inner: Any, what: str) -> None:
        self._inner = inner
        self._what = what

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        with _errors(self._what):
            return bytes(self._inner.read(-1 if size is None else size))

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with _errors(self._what):
                self._inner.close()
        super().close()


class _S3Writer(BackendWriter):
    def __init__(self, backend: S3Backend, key: str, full_key: str) -> None:
        super().__init__(key)
        self._b = backend
        self._full = full_key
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def _call(self, method: str, **kwargs: Any) -> Any:
        what = f"{method} {self._b.uri}/{self.key}"
        try:
            with _errors(what):
                return self._b.fs.call_s3(method, Bucket=self._b.bucket, Key=self._full, **kwargs)
        except NotFound as exc:  # a missing bucket or upload is a broken store, not a lookup
            raise StoreError(f"{what}: no such bucket or upload") from exc.__cause__

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data
        while len(self._buf) >= PART_SIZE:
            with memoryview(self._buf) as view:  # one copy of the part, not two
                part = bytes(view[:PART_SIZE])
            del self._buf[:PART_SIZE]
            self._upload_part(part)

    def _upload_part(self, body: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._call("create_multipart_upload")["UploadId"]
        number = len(self._parts) + 1
        out = self._call("upload_part", UploadId=self._upload_id, PartNumber=number, Body=body)
        self._parts.append({"PartNumber": number, "ETag": out["ETag"]})

    def _commit(self) -> None:
        if self._upload_id is None:  # small object: one PUT, atomic by itself
            self._call("put_object", Body=bytes(self._buf))
        else:
            if self._buf:
                self._upload_part(bytes(self._buf))
            self._call(
                "complete_multipart_upload",
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buf = bytearray()

    def _abort(self) -> None:
        self._buf = bytearray()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._call("abort_multipart_upload", UploadId=upload_id)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _endpoint() -> str | None:
    # botocore reads these too; passing the endpoint explicitly keeps older clients honest.
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3Backend(ArtifactBackend):
    """Keys live under ``s3://bucket/prefix/``."""

    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"artifacts URI: expected s3://bucket/prefix, got {uri!r}")
        try:
            import s3fs
        except ImportError as exc:
            raise MissingDependency("s3fs", extra="s3", purpose="An s3:// artifact store") from exc
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        if self.prefix:
            self.prefix = safe_relpath(self.prefix, field="artifacts URI prefix")
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        # fsspec reuses one client per (endpoint, options) in a process: building one costs
        # ~0.3 s, and stores are opened per call. Listings are never cached.
        self.fs = s3fs.S3FileSystem(endpoint_url=_endpoint(), use_listings_cache=False)

    def __repr__(self) -> str:
        return f"S3Backend({self.uri!r})"

    def _full(self, key: str) -> tuple[str, str]:
        key = safe_relpath(key, field="key")
        return key, f"{self.prefix}/{key}" if self.prefix else key

    def _head(self, key: str) -> dict[str, Any] | None:
        key, full = self._full(key)
        try:
            with _errors(f"head {self.uri}/{key}"):
                head: dict[str, Any] = self.fs.call_s3("head_object", Bucket=self.bucket, Key=full)
        except NotFound:
            return None
        return head

    def open_writer(self, key: str) -> BackendWriter:
        key, full = self._full(key)
        return _S3Writer(self, key, full)

    def open_reader(self, key: str) -> BinaryIO:
        key, full = self._full(key)
        what = f"read {self.uri}/{key}"
        with _errors(what):
            inner = self.fs.open(
                f"{self.bucket}/{full}", "rb", block_size=READ_BLOCK, cache_type="readahead"
            )
        # A RawIOBase is a binary stream, but typing's BinaryIO is a nominal class.
        return cast(BinaryIO, _S3Reader(inner, what))

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise NotFound(f"no artifact at key {key!r} in {self.uri}")
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        key, full = self._full(key)
        with _errors(f"delete {self.uri}/{key}"):
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=full)

    def _root(self, prefix: str) -> str:
        folder = safe_relpath(prefix, field="prefix") if prefix else ""
        joined = "/".join(p for p in (self.prefix, folder) if p)
        return f"{joined}/" if joined else ""

    def iter_keys(self, prefix: str = "") -> Iterator[KeyInfo]:
        root = self._root("")  # keys are yielded relative to the store root
        listed = self._root(prefix)
        token: dict[str, str] = {}
        while True:
            with _errors(f"list {self.uri}/{prefix}"):
                page = self.fs.call_s3(
                    "list_objects_v2", Bucket=self.bucket, Prefix=listed, **token
                )
            for item in page.get("Contents", ()):
                yield KeyInfo(
                    item["Key"][len(root) :], int(item["Size"]), _ms(item["LastModified"])
                )
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _active_since(self, key: str, upload_id: str, cutoff_ms: int) -> bool:
        """Whether a part of the upload arrived after ``cutoff_ms``: a long upload that is
        still sending parts is alive however long ago it started."""
        marker: dict[str, int] = {}
        while True:
            try:
                with _errors(f"list parts of {key}"):
                    page = self.fs.call_s3(
                        "list_parts", Bucket=self.bucket, Key=key, UploadId=upload_id, **marker
                    )
            except NotFound:
                return True  # completed or aborted meanwhile: not ours to purge
            if any(_ms(part["LastModified"]) > cutoff_ms for part in page.get("Parts", ())):
                return True
            if not page.get("IsTruncated"):
                return False
            marker = {"PartNumberMarker": int(page["NextPartNumberMarker"])}

    def purge_incomplete(self, *, older_than_s: float, dry_run: bool = True) -> int:
        cutoff_ms = now_ms() - int(older_than_s * 1000)
        stale: list[tuple[str, str]] = []
        marker: dict[str, str] = {}
        while True:
            with _errors(f"list multipart uploads in {self.uri}"):
                page = self.fs.call_s3(
                    "list_multipart_uploads", Bucket=self.bucket, Prefix=self._root(""), **marker
                )
            for upload in page.get("Uploads", ()):
                key, upload_id = upload["Key"], upload["UploadId"]
                if _ms(upload["Initiated"]) <= cutoff_ms and not self._active_since(
                    key, upload_id, cutoff_ms
                ):
                    stale.append((key, upload_id))
            if not page.get("IsTruncated"):
                break
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }
        if not dry_run:
            for key, upload_id in stale:
                try:
                    with _errors(f"abort upload of {key}"):
                        self.fs.call_s3(
                            "abort_multipart_upload",
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                        )
                except NotFound:
                    continue  # its writer completed or aborted it meanwhile
        return len(stale)
