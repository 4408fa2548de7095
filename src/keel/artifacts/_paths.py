"""Names that become storage keys: checked once, here, so no backend has to think about it.

Every name that reaches a backend key passes ``safe_relpath``; digests pass ``check_digest``.
The checks are deliberately strict (reject rather than repair) because a name that needs
repairing came from somewhere that should be fixed, and a repaired name could collide with
another one.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from urllib.parse import unquote

from keel.errors import InvalidInput, UnsafePath

# S3 keys are at most 1024 bytes; most filesystems cap one name at 255 bytes.
MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 255
DIGEST_LENGTH = 64
OBJECTS_PREFIX = "objects"

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def _reject(field: str, name: str, why: str) -> UnsafePath:
    return UnsafePath(f"{why} (got {name!r})", field=field)


def _check(text: str, *, field: str, original: str) -> None:
    if "\x00" in text:
        raise _reject(field, original, "NUL bytes are not allowed")
    if _CONTROL_RE.search(text):
        raise _reject(field, original, "control characters are not allowed")
    if "\\" in text:
        raise _reject(field, original, "backslashes are not allowed; use '/' between folders")
    if text.startswith("/") or _DRIVE_RE.match(text):
        raise _reject(field, original, "absolute paths are not allowed")
    if ".." in text.split("/"):
        raise _reject(field, original, "'..' segments are not allowed")


def safe_relpath(name: str | bytes, *, field: str = "name") -> str:
    """``name`` as a normalised relative posix path that cannot escape its root.

    Bytes are decoded (strict UTF-8) exactly once. The result is NFC-normalised with ``.``
    segments and repeated or trailing slashes removed. Rejected with ``UnsafePath`` (naming
    ``field``): empty names, NUL and control characters, backslashes, absolute paths and drive
    letters, any ``..`` segment, over-long names, and percent-encoded forms of any of these
    (``%2e%2e/``), so a layer that decodes once more later still cannot be tricked.
    """
    if isinstance(name, bytes):
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafePath(f"not valid UTF-8 (got {name!r})", field=field) from exc
    elif isinstance(name, str):
        text = name
    else:
        raise InvalidInput(f"expected a string, got {type(name).__name__}", field=field)
    text = unicodedata.normalize("NFC", text)
    _check(text, field=field, original=text)
    decoded = unquote(text)
    if decoded != text:
        _check(decoded, field=field, original=text)
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise _reject(field, text, "the name is empty")
    result = posixpath.join(*parts)
    if len(result.encode("utf-8")) > MAX_NAME_BYTES:
        raise _reject(field, text[:64] + "…", f"longer than {MAX_NAME_BYTES} bytes")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _reject(
                field, part[:64] + "…", f"a segment is longer than {MAX_SEGMENT_BYTES} bytes"
            )
    return result


def check_digest(digest: object, *, field: str = "digest") -> str:
    """``digest`` if it is a lowercase hex BLAKE3 digest (64 characters), else ``InvalidInput``.

    Digests become storage keys, so this is also a containment check.
    """
    if not isinstance(digest, str):
        raise InvalidInput(f"expected a hex string, got {type(digest).__name__}", field=field)
    if not _DIGEST_RE.fullmatch(digest):
        shown = digest if len(digest) <= 80 else digest[:80] + "…"
        raise InvalidInput(
            f"expected {DIGEST_LENGTH} lowercase hex characters (a BLAKE3 digest), got {shown!r}",
            field=field,
        )
    return digest


def object_key(digest: str) -> str:
    """Where the object with ``digest`` lives: ``objects/ab/cdef…`` (256 fan-out folders keep
    local directories small and spread S3 key prefixes)."""
    check_digest(digest)
    return f"{OBJECTS_PREFIX}/{digest[:2]}/{digest[2:]}"


def digest_from_key(key: str) -> str | None:
    """The digest an ``objects/ab/cdef…`` key holds, or None for a key that is not an object."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != OBJECTS_PREFIX or len(parts[1]) != 2:
        return None
    digest = parts[1] + parts[2]
    return digest if _DIGEST_RE.fullmatch(digest) else None
