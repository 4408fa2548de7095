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
    """Digest and size of a file; large files are memory-mapped and hashed on all cores."""
    p = Path(path)
    size = p.stat().st_size
    if size > _MULTITHREAD_ABOVE:
        h = blake3(max_threads=blake3.AUTO)
        h.update_mmap(p)
        return str(h.hexdigest()), size
    with p.open("rb") as f:
        return hash_stream(f)
