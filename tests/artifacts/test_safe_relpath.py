"""``safe_relpath`` and ``check_digest``: the gate every storage key passes."""

from __future__ import annotations

import pytest

from keel.artifacts import check_digest, object_key, safe_relpath
from keel.artifacts._paths import digest_from_key
from keel.errors import InvalidInput, UnsafePath


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "a.txt"),
        ("dir/sub/file.bin", "dir/sub/file.bin"),
        ("./dir//file/", "dir/file"),
        ("a/./b", "a/b"),
        (b"bytes/name.txt", "bytes/name.txt"),
        ("cafe\u0301.txt", "caf\u00e9.txt"),  # NFC: one spelling per name
        ("50%off.csv", "50%off.csv"),  # not an escape: kept as written
        ("a%20b.txt", "a%20b.txt"),  # decoded only to check, never rewritten
        ("..hidden/..x", "..hidden/..x"),  # dots inside a segment are fine
    ],
)
def test_safe_names_are_normalised(name: str | bytes, expected: str) -> None:
    assert safe_relpath(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "./",
        "/",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/..",
        "a\\b",
        "..\\x",
        "C:/windows",
        "c:x",
        "nul\x00",
        "line\nbreak",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "a/%2e%2e/%2e%2e/x",
        "%00",
        "%5c",
        "%2fetc",
        "x" * 256,
        "/".join(["d" * 200] * 6),
        b"\xff\xfe",
    ],
)
def test_unsafe_names_are_rejected_with_the_field(name: str | bytes) -> None:
    with pytest.raises(UnsafePath) as err:
        safe_relpath(name, field="path")
    assert err.value.field == "path"
    assert str(err.value).startswith("path: ")


def test_non_string_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as err:
        safe_relpath(3, field="name")  # type: ignore[arg-type]
    assert err.value.field == "name"


def test_digest_checks_and_keys() -> None:
    d = "ab" + "c" * 62
    assert check_digest(d) == d
    assert object_key(d) == f"objects/ab/{'c' * 62}"
    assert digest_from_key(object_key(d)) == d
    for key in ("objects/ab", "objects/zz/" + "c" * 62, "other/ab/" + "c" * 62, "objects/a/b/c"):
        assert digest_from_key(key) is None
    for bad in ("AB" + "c" * 62, "ab", None, 5):
        with pytest.raises(InvalidInput) as err:
            check_digest(bad, field="keep")
        assert err.value.field == "keep"
