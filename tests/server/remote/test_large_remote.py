"""A large artifact through a server process in constant memory, both ways: the client's
Python allocations and the server's resident memory stay flat while the object streams.
256 MiB by default; KEEL_SLOW=1 sends 3 GiB."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from keel.artifacts import ContentStore, ObjectRef
from keel.artifacts._http import HttpBackend
from keel.testing.artifact_conformance import ChunkStream, stream_digest

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote

MiB = 1 << 20
SIZE = (3 << 30) if os.environ.get("KEEL_SLOW") == "1" else 256 * MiB


@pytest.fixture(scope="module")
def big_server(
    remote_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """A server process that accepts bodies larger than the object; its URL and pid."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from remote_server import start_server, stop_server

    base = tmp_path_factory.mktemp("big-server")
    proc, url = start_server(
        db_url=remote_db,
        artifacts=base / "artifacts",
        log_path=base / "server.log",
        extra_env={"KEEL_SERVER_MAX_BODY_BYTES": str(SIZE + MiB)},
    )
    try:
        yield url, proc.pid
    finally:
        stop_server(proc)


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.slow
def test_a_large_object_streams_through_the_server(
    remote: Remote, big_server: tuple[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, pid = big_server
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the client's upload spool
    backend = HttpBackend(url, token=remote.token)
    store = ContentStore(backend)
    expected = stream_digest(SIZE, seed=11)
    assert not store.exists(expected)  # connections and imports before measuring
    server_before = _rss_kib(pid, "VmRSS")
    tracemalloc.start()
    try:
        ref = store.put_stream(ChunkStream(SIZE, seed=11), digest=expected)  # type: ignore[arg-type]
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with store.open(ref.digest) as reader:
            total = 0
            while chunk := reader.read(MiB):
                total += len(chunk)
            assert reader.verified
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        backend.close()
    server_peak = _rss_kib(pid, "VmHWM")
    assert ref == ObjectRef(expected, SIZE) and total == SIZE
    assert put_peak < 12 * MiB and get_peak < 12 * MiB, (put_peak, get_peak)
    grew = (server_peak - server_before) * 1024
    assert grew < 64 * MiB, f"the server's resident memory grew by {grew / MiB:.0f} MiB"
