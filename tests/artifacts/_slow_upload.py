"""Run by test_crash_atomicity: upload a large stream slowly, reporting progress on stdout,
so the test can SIGKILL this process in the middle of the upload.

Usage: python _slow_upload.py STORE_URI TOTAL_BYTES
"""

from __future__ import annotations

import sys
import time

from keel.artifacts import open_content_store
from keel.testing.artifact_conformance import ChunkStream, stream_digest


class SlowStream(ChunkStream):
    def read(self, size: int = -1) -> bytes:
        time.sleep(0.02)
        return super().read(size)


def main() -> None:
    uri, total = sys.argv[1], int(sys.argv[2])
    store = open_content_store(uri)
    digest = stream_digest(total, seed=42)
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        print(done, flush=True)

    print(f"digest {digest}", flush=True)
    store.put_stream(SlowStream(total, seed=42), digest=digest, progress=report)  # type: ignore[arg-type]
    print("committed", flush=True)


if __name__ == "__main__":
    main()
