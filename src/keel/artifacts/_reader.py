"""Reading an object back while proving it is the object that was stored.

A content-addressed store is only as good as its read path: bytes that rotted on disk, were
truncated by a bad copy or replaced by hand must never reach the caller silently. Streaming
readers cannot check before handing bytes out, so the check happens the moment the last byte
is read (or the stream ends early or runs long) and the read that completes the object raises
``IntegrityError`` instead of returning.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, BinaryIO

from keel._hashing import CHUNK, Hasher
from keel.errors import IntegrityError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class VerifyingReader(io.RawIOBase):
    """A binary stream over one stored object that raises ``IntegrityError`` at the end if the
    bytes do not hash to ``digest`` or their count is not ``size``."""

    def __init__(self, inner: BinaryIO, *, digest: str, size: int) -> None:
        self._inner = inner
        self.digest = digest
        self.size = size
        self._hasher = Hasher()
        self._verified = False
        self._failure: IntegrityError | None = None

    @property
    def verified(self) -> bool:
        """True once every byte has been read and matched the digest."""
        return self._verified

    def readable(self) -> bool:
        return True

    def _verify(self) -> None:
        actual, got = self._hasher.hexdigest(), self._hasher.size
        if got != self.size or actual != self.digest:
            self._failure = IntegrityError(
                f"object {self.digest} is corrupt: read {got} bytes hashing to {actual}, "
                f"expected {self.size} bytes"
            )
            raise self._failure
        self._verified = True

    def read(self, size: int | None = -1, /) -> bytes:
        if self.closed:
            raise ValueError("read from a closed reader")
        if self._failure is not None:
            raise self._failure
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        if self._verified:
            # The whole object was read and checked; anything more is an object growing
            # under us, which is corruption too.
            extra = self._inner.read(1)
            if extra:
                self._hasher.update(extra)
                self._verified = False
                self._verify()
            return b""
        chunk = self._inner.read(size)
        self._hasher.update(chunk)
        if not chunk or self._hasher.size >= self.size:
            self._verify()
        return chunk

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()
