"""Artifacts over HTTP: bytes stream through the server, hashed both ways (``HttpBackend``'s
server).

Request and response bodies are streamed in chunks (never read whole), so an upload of several
GB takes constant memory; uploads go through the backend's atomic publish, so a connection
dropped mid-upload leaves nothing visible and the upload can simply be sent again. Keys in a
URL are decoded once (by the router) and checked with ``safe_relpath``: ``..``, absolute paths,
percent-encoded forms, backslashes and NUL never reach a backend. The API takes no storage URI
or filesystem path from a client: the server owns the store. Downloads carry
``Content-Disposition: attachment`` (and the security headers every response has, among them
``X-Content-Type-Options: nosniff``), so a stored HTML file is never rendered by a browser.

Any signed-in caller may store an object, but reading one (``GET``/``HEAD``) is scoped by the
stored references to it (``keel.server._objects``): anything else is 404, like a missing one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Annotated, BinaryIO
from urllib.parse import quote

import anyio.from_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from keel._hashing import CHUNK, Hasher
from keel.artifacts import ContentStore, ObjectRef, VerifyingReader, check_digest, safe_relpath
from keel.auth import Principal, Role
from keel.errors import IntegrityError, InvalidInput, NotFound
from keel.server._policy import (
    admin,
    authenticated,
    current_principal,
    mark_unchanged,
    project_role,
)
from keel.server._state import ServerState, get_state
from keel.server.routes.tracking import read_json, reply, run_project

log = logging.getLogger("keel.server")
Caller = Annotated[Principal, Depends(current_principal)]
router = APIRouter(prefix="/api/v1", tags=["artifacts"])

OCTETS = "application/octet-stream"
SIZE_HEADER = "X-Keel-Size"


class _BodyReader:
    """A blocking ``read()`` over the request body, for store code running in a worker thread
    (each read waits for the next chunks on the event loop)."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream().__aiter__()
        self._buffer = bytearray()
        self._done = False

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        return out


class _HashingReader:
    """A reader that hashes what passes through it."""

    def __init__(self, reader: _BodyReader) -> None:
        self.reader = reader
        self.hasher = Hasher()

    def read(self, size: int = -1) -> bytes:
        data = self.reader.read(size)
        self.hasher.update(data)
        return data


def _key(key: str) -> str:
    return safe_relpath(key, field="key")


def _chunks(reader: BinaryIO, *, what: str) -> Iterator[bytes]:
    """The reader's bytes; a failed check cuts the response (the client sees it broken off)."""
    try:
        while chunk := reader.read(CHUNK):
            yield chunk
    except IntegrityError:
        log.error("refused to finish sending %s: the stored bytes are corrupt", what)
        raise
    finally:
        reader.close()


def _open_verified(content: ContentStore, digest: str) -> VerifyingReader:
    """The object, checked whole before a byte is sent. A corrupt object is then a clean 422
    ``IntegrityError`` rather than a response cut short, at the price of reading it twice (the
    second read mostly from the page cache); the check while sending stays, for bytes that
    change in between."""
    content.verify(digest)
    return content.open(digest)


def _attachment(name: str) -> str:
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _receive(request: Request, store_it: object) -> Response | None:
    """Run ``store_it(reader)`` in a worker thread; None if the client went away mid-upload
    (the store has aborted the write by then)."""
    reader = _BodyReader(request)
    try:
        await run_in_threadpool(store_it, reader)  # type: ignore[arg-type]
    except ClientDisconnect:
        log.info("upload to %s abandoned by the client; nothing was published", request.url.path)
        return Response(status_code=400)
    return None


# -- content-addressed objects -------------------------------------------------------------


def _hidden(digest: str) -> NotFound:
    # The same answer as for a missing object: no existence oracle.
    return NotFound(f"no object {digest} that you can read")


def check_readable(state: ServerState, principal: Principal, digests: Iterable[str]) -> None:
    """``NotFound`` unless stored references let ``principal`` read every one of ``digests``
    (``keel.server._objects``). Routes that make a record refer to objects call it too, so
    naming a digest in a record cannot earn the right to read it."""
    wanted = sorted(set(digests))
    if principal.is_admin or not wanted:
        return
    visible = state.auth.visible_projects(principal)
    for digest in wanted:
        if not _is_digest(digest) or not state.objects.readable(digest, principal.user_id, visible):
            raise _hidden(digest)


def _is_digest(value: str) -> bool:
    try:
        check_digest(value)
    except InvalidInput:
        return False
    return True


@router.put("/artifacts/objects/{digest}", dependencies=[authenticated()], status_code=201)
async def put_object(digest: str, request: Request, principal: Caller) -> Response:
    """Store the body as the object ``digest``: hashed as it is written, published only if it
    hashes to ``digest`` (422 otherwise, nothing stored). The uploader may read it back."""
    state = get_state(request)
    check_digest(digest)
    declared = request.headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    stored: list[ObjectRef] = []

    def store_it(reader: _BodyReader) -> None:
        hashing = _HashingReader(reader)
        stored.append(state.content.put_stream(hashing, digest=digest, size=size))  # type: ignore[arg-type]
        # An object already stored is not read by the store: hash the body here all the same,
        # since sending the bytes is what lets the uploader read the object back.
        while hashing.read(CHUNK):
            pass
        if hashing.hasher.hexdigest() != digest:
            raise InvalidInput(
                f"the body ({hashing.hasher.size} bytes) hashes to "
                f"{hashing.hasher.hexdigest()}, not to {digest}",
                field="digest",
            )
        state.objects.record_upload(digest, principal.user_id)

    gone = await _receive(request, store_it)
    if gone is not None:
        return gone
    return reply({"digest": stored[0].digest, "size": stored[0].size}, 201)


@router.get("/artifacts/objects/{digest}", dependencies=[authenticated()])
async def get_object(digest: str, request: Request, principal: Caller) -> Response:
    """The object's bytes, checked against ``digest`` as they are sent. Only for a caller who
    can read a project whose run, model version or dataset version references it, or who
    uploaded it (404 otherwise, as for a missing object)."""
    state = get_state(request)

    def open_it() -> VerifyingReader:
        check_digest(digest)
        check_readable(state, principal, [digest])
        return _open_verified(state.content, digest)

    reader = await run_in_threadpool(open_it)
    return StreamingResponse(
        _chunks(reader, what=f"object {digest}"),  # type: ignore[arg-type]
        media_type=OCTETS,
        headers={SIZE_HEADER: str(reader.size), "Content-Disposition": _attachment(digest)},
    )


@router.head("/artifacts/objects/{digest}", dependencies=[authenticated()])
async def head_object(digest: str, request: Request, principal: Caller) -> Response:
    """Whether the object is stored and readable by the caller (404 if not), with its size."""
    state = get_state(request)

    def stat_it() -> ObjectRef:
        check_digest(digest)
        check_readable(state, principal, [digest])
        return state.content.stat(digest)

    ref = await run_in_threadpool(stat_it)
    return Response(status_code=200, headers={SIZE_HEADER: str(ref.size)})


# -- raw keys (administration) -------------------------------------------------------------


@router.put("/artifacts/keys/{key:path}", dependencies=[admin()], status_code=201)
async def put_key(key: str, request: Request) -> Response:
    """Publish the body under a raw key (admins: backups and repairs)."""
    state = get_state(request)
    name = _key(key)
    backend = state.content.backend

    def store_it(reader: _BodyReader) -> None:
        writer = backend.open_writer(name)
        try:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
            writer.commit()
        finally:
            writer.abort()  # a no-op after the commit

    gone = await _receive(request, store_it)
    return gone or Response(status_code=201)


@router.get("/artifacts/keys/{key:path}", dependencies=[admin()])
async def get_key(key: str, request: Request) -> Response:
    """The raw bytes under a key."""
    state = get_state(request)
    name = _key(key)
    backend = state.content.backend

    def open_it() -> tuple[int, BinaryIO]:
        return backend.size(name), backend.open_reader(name)

    size, reader = await run_in_threadpool(open_it)
    return StreamingResponse(
        _chunks(reader, what=f"key {name!r}"),
        media_type=OCTETS,
        headers={
            SIZE_HEADER: str(size),
            "Content-Length": str(size),
            "Content-Disposition": _attachment(name.rsplit("/", 1)[-1]),
        },
    )


@router.head("/artifacts/keys/{key:path}", dependencies=[admin()])
async def head_key(key: str, request: Request) -> Response:
    """Whether a raw key is published (404 if not), with its size."""
    state = get_state(request)
    size = await run_in_threadpool(state.content.backend.size, _key(key))
    return Response(status_code=200, headers={SIZE_HEADER: str(size)})


@router.delete("/artifacts/keys/{key:path}", dependencies=[admin()])
async def delete_key(key: str, request: Request) -> Response:
    """Remove a raw key (idempotent)."""
    state = get_state(request)
    await run_in_threadpool(state.content.backend.delete, _key(key))
    return Response(status_code=204)


@router.get("/artifacts/keys", dependencies=[admin()])
async def list_keys(request: Request, prefix: str = "") -> Response:
    """Every published key under the folder ``prefix``: ``[key, size, modified_ms]`` rows."""
    state = get_state(request)
    folder = _key(prefix) if prefix not in ("", ".", "/") else ""
    rows = await run_in_threadpool(
        lambda: [list(info) for info in state.content.backend.iter_keys(folder)]
    )
    return reply({"keys": rows})


@router.post("/artifacts/purge-incomplete", dependencies=[admin()])
async def purge_incomplete(request: Request) -> Response:
    """Remove abandoned incomplete writes older than ``older_than_s`` (dry run by default)."""
    state = get_state(request)
    _, body = await read_json(request)
    older = body.get("older_than_s")
    if isinstance(older, bool) or not isinstance(older, int | float) or older < 0:
        raise InvalidInput("expected seconds >= 0", field="older_than_s")
    dry_run = body.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise InvalidInput("expected true or false", field="dry_run")
    if dry_run:
        mark_unchanged(request)
    count = await run_in_threadpool(
        lambda: state.content.backend.purge_incomplete(older_than_s=older, dry_run=dry_run)
    )
    return reply({"count": count})


# -- a run's files -------------------------------------------------------------------------


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    dependencies=[project_role(Role.VIEWER, project=run_project)],
)
async def download_run_artifact(run_id: str, path: str, request: Request) -> Response:
    """A file of a run by its path, verified against its recorded digest as it is sent."""
    state = get_state(request)
    name = safe_relpath(path, field="path")

    def open_it() -> tuple[str, BinaryIO, int]:
        files = state.tracking.list_artifacts(run_id, name)
        match = next((f for f in files if f.path == name), None)
        if match is None:
            raise NotFound(f"run {run_id} has no artifact {name!r}")
        reader = _open_verified(state.content, match.digest)
        return match.digest, reader, reader.size  # type: ignore[return-value]

    digest, reader, size = await run_in_threadpool(open_it)
    return StreamingResponse(
        _chunks(reader, what=f"{name!r} of run {run_id}"),
        media_type=OCTETS,
        headers={
            SIZE_HEADER: str(size),
            "X-Keel-Digest": digest,
            "Content-Disposition": _attachment(name.rsplit("/", 1)[-1]),
        },
    )
