"""Artifact storage: bytes by key on a local folder or S3, and a content-addressed store on top.

Most code wants ``open_content_store()`` (the configured store) and its ``put_*`` / ``get_*``
methods; see ``docs/artifacts.md`` for the layout and the guarantees. This module imports no
storage client: s3fs loads only when an ``s3://`` store is opened.
"""

from __future__ import annotations

from keel.artifacts._base import (
    DEFAULT_GRACE_S,
    ArtifactBackend,
    BackendWriter,
    GcReport,
    KeyInfo,
    ObjectRef,
    ProgressCallback,
)
from keel.artifacts._cas import ContentStore, open_backend, open_content_store
from keel.artifacts._local import LocalBackend
from keel.artifacts._paths import check_digest, object_key, safe_relpath
from keel.artifacts._reader import VerifyingReader

__all__ = [
    "DEFAULT_GRACE_S",
    "ArtifactBackend",
    "BackendWriter",
    "ContentStore",
    "GcReport",
    "KeyInfo",
    "LocalBackend",
    "ObjectRef",
    "ProgressCallback",
    "VerifyingReader",
    "check_digest",
    "object_key",
    "open_backend",
    "open_content_store",
    "safe_relpath",
]
