"""Run by test_crash_atomicity: store every file under a folder with ``put_files``, printing a
line per stored file, so the test can SIGKILL this process in the middle of the batch.

Usage: python _bulk_put.py STORE_URI FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

from keel.artifacts import open_content_store


def main() -> None:
    uri, folder = sys.argv[1], Path(sys.argv[2])
    store = open_content_store(uri)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    store.put_files(files, progress=lambda n: print(n, flush=True))
    print("committed", flush=True)


if __name__ == "__main__":
    main()
