"""Killing a process mid-artifact-upload leaves no partial object visible.

A child process streams a large object slowly into the store; the test SIGKILLs it once part
of the object has reached the backend (a temp file locally, uploaded multipart parts on S3),
then checks that nothing is listed or readable, that the leftovers are really there (so the
kill did land mid-upload), and that gc clears them once they are past the grace period.
Another child stores a batch of files with ``put_files`` and is killed mid-batch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from keel.artifacts import ContentStore, open_content_store
from keel.artifacts._local import TMP_DIRNAME
from keel.testing.artifact_conformance import MiB

SCRIPT = Path(__file__).with_name("_slow_upload.py")
BULK_SCRIPT = Path(__file__).with_name("_bulk_put.py")
TOTAL = 64 * MiB
KILL_AFTER = 20 * MiB  # past two 8 MiB S3 parts, well before the end


def _kill_when(args: list[str], enough: Callable[[list[str]], bool]) -> list[str]:
    """Run ``python *args`` and read its stdout lines until ``enough`` of them, then SIGKILL
    it; returns the lines read. Fails if the child finishes (prints ``committed``) or exits
    first."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            assert line.strip() != "committed", "the child finished before it was killed"
            lines.append(line.strip())
            if enough(lines):
                break
        else:
            pytest.fail("the child exited early: " + proc.stderr.read())  # type: ignore[union-attr]
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return lines


def _kill_mid_upload(uri: str) -> str:
    """Start the slow upload, SIGKILL it after KILL_AFTER bytes; returns the object's digest."""
    lines = _kill_when(
        [str(SCRIPT), uri, str(TOTAL)], lambda ls: len(ls) > 1 and int(ls[-1]) >= KILL_AFTER
    )
    assert lines[0].startswith("digest "), lines[0]
    return lines[0].split()[1]


def _assert_nothing_visible(store: ContentStore, digest: str) -> None:
    assert not store.exists(digest)
    assert list(store.iter_objects()) == []
    assert list(store.backend.iter_keys()) == []
    assert store.gc(set(), dry_run=True, older_than_s=0).deleted == ()


@pytest.mark.timeout(120)
def test_local_kill_mid_upload_leaves_no_object(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    digest = _kill_mid_upload(uri)
    store = open_content_store(uri)
    _assert_nothing_visible(store, digest)
    leftovers = list((tmp_path / "store" / TMP_DIRNAME).iterdir())
    assert len(leftovers) == 1 and leftovers[0].stat().st_size >= KILL_AFTER - MiB
    assert store.gc(set(), dry_run=False).incomplete_count == 0  # inside the grace period
    report = store.gc(set(), dry_run=False, older_than_s=0)
    assert report.incomplete_count == 1
    assert not leftovers[0].exists()
    _assert_nothing_visible(store, digest)


@pytest.mark.timeout(120)
def test_local_kill_mid_bulk_put_leaves_only_whole_objects(tmp_path: Path) -> None:
    """``put_files`` writes many objects at once (unnamed files linked in, or temp files
    renamed): killed mid-batch, every object it shows is whole."""
    folder = tmp_path / "src"
    folder.mkdir()
    files = 400
    for i in range(files):
        (folder / f"{i:03d}.bin").write_bytes(os.urandom(256 * 1024))
    uri = str(tmp_path / "store")
    _kill_when([str(BULK_SCRIPT), uri, str(folder)], lambda stored: len(stored) == 20)
    store = open_content_store(uri)
    shown = list(store.iter_objects())
    assert 20 <= len(shown) < files
    for ref in shown:
        assert store.verify(ref.digest) == ref
        assert ref.size == 256 * 1024
    store.gc(set(), dry_run=False, older_than_s=0)  # removes any temp file left behind
    assert not any((tmp_path / "store" / TMP_DIRNAME).glob("*"))


@pytest.mark.services
@pytest.mark.timeout(120)
def test_s3_kill_mid_upload_leaves_no_object(s3_env: str, moto_endpoint: str) -> None:
    digest = _kill_mid_upload(s3_env)
    store = open_content_store(s3_env)
    _assert_nothing_visible(store, digest)
    bucket = s3_env.removeprefix("s3://").split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert len(uploads) == 1  # the kill landed mid-upload: parts were sent, never completed
    parts = client.list_parts(Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])
    assert len(parts.get("Parts", [])) >= 2
    assert store.gc(set(), dry_run=False).incomplete_count == 0  # inside the grace period
    assert store.gc(set(), dry_run=False, older_than_s=0).incomplete_count == 1
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    _assert_nothing_visible(store, digest)
