"""The S3 backend against a real moto server over HTTP: the conformance suite, plus raw-API
corruption, listing freshness across clients, and error translation."""

from __future__ import annotations

import socket

import boto3
import pytest

from keel._hashing import hash_bytes
from keel.artifacts import ContentStore, object_key, open_backend, open_content_store
from keel.artifacts._s3 import S3Backend
from keel.errors import IntegrityError, StoreError, StoreUnavailable
from keel.testing.artifact_conformance import ArtifactStoreConformance, MiB

pytestmark = pytest.mark.services


class TestS3Conformance(ArtifactStoreConformance):
    # One 8 MiB multipart part is buffered and copied once into the request body.
    memory_bound = 24 * MiB

    @pytest.fixture
    def store(self, s3_env: str) -> ContentStore:
        return open_content_store(s3_env)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def test_flipped_byte_via_raw_boto3_put_is_detected(s3_env: str, moto_endpoint: str) -> None:
    store = open_content_store(s3_env)
    ref = store.put_bytes(b"weights" * 1000)
    bucket, prefix = _split(s3_env)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    key = f"{prefix}/{object_key(ref.digest)}"
    raw = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    raw[3] ^= 0x40
    client.put_object(Bucket=bucket, Key=key, Body=bytes(raw))
    with pytest.raises(IntegrityError):
        store.get_bytes(ref.digest)


def test_objects_live_under_the_prefix(s3_env: str, moto_endpoint: str) -> None:
    store = open_content_store(s3_env + "/")
    assert store.uri == s3_env
    ref = store.put_bytes(b"where")
    bucket, prefix = _split(s3_env)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"{prefix}/{object_key(ref.digest)}"]


def test_listings_are_never_stale_across_clients(s3_env: str) -> None:
    writer, reader = open_content_store(s3_env), open_content_store(s3_env)
    digest = writer.put_bytes(b"1").digest
    assert not reader.exists(hash_bytes(b"2"))
    assert [r.digest for r in reader.iter_objects()] == [digest]
    ref = writer.put_bytes(b"2")
    assert ref in set(reader.iter_objects())
    assert reader.exists(ref.digest)
    writer.gc(set(), dry_run=False, older_than_s=0)
    assert list(reader.iter_objects()) == []
    assert not reader.exists(ref.digest)


def test_bucket_root_store(s3_env: str) -> None:
    bucket, _ = _split(s3_env)
    store = open_content_store(f"s3://{bucket}")
    ref = store.put_bytes(b"root")
    assert [r.digest for r in store.iter_objects()] == [ref.digest]


def test_missing_bucket_is_a_store_error(s3_env: str) -> None:
    store = open_content_store("s3://keel-no-such-bucket-here/x")
    with pytest.raises(StoreError):
        store.put_bytes(b"nowhere")


def test_unreachable_endpoint_is_store_unavailable(
    s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast: retries are not under test
    backend = open_backend(s3_env)
    assert isinstance(backend, S3Backend)
    with pytest.raises(StoreUnavailable) as err:
        backend.exists("anything")
    assert err.value.__cause__ is not None
