"""Content hashing: BLAKE3, streamed, hex digests prefixed by the algorithm name."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

ALGORITHM = "blake3"
CHUNK = 1 << 20
# Above this size blake3's own thread pool hashes faster than one core.
_MULTITHREAD_ABOVE = 8 << 20


class Hasher:
    """An incremental BLAKE3 hasher that also counts bytes."""

    def __init__(self) -> None:
        self._h = blake3(max_threads=blake3.AUTO)
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return str(self._h.hexdigest())


def hash_bytes(data: bytes) -> str:
    return str(blake3(data).hexdigest())


def hash_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """Digest and size of a stream of chunks."""
    h = Hasher()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest(), h.size


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """Digest and size of a readable binary stream, in constant memory."""
    return hash_chunks(iter(lambda: stream.read(CHUNK), b""))


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Digest and size of a file. Large files are memory-mapped and hashed on all cores; the
    rest are read in one piece into a buffer and hashed on one core (a thread pool over
    larger files costs more than it saves)."""
    p = Path(path)
    with p.open("rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size > _MULTITHREAD_ABOVE:
            h = blake3(max_threads=blake3.AUTO)
            h.update_mmap(p)
            return str(h.hexdigest()), size
        # One spare byte shows a file that grew since the stat; then read the rest as a stream.
        buf = bytearray(size + 1)
        view = memoryview(buf)
        n = 0
        while n < len(buf) and (got := f.readinto(view[n:])):
            n += got
        if n <= size:
            return str(blake3(memoryview(buf)[:n]).hexdigest()), n
        h = blake3(memoryview(buf)[:n])
        total = n
        while chunk := f.read(CHUNK):
            h.update(chunk)
            total += len(chunk)
        return str(h.hexdigest()), total
