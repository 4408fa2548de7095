"""The request-body JSON depth scanner against a byte-by-byte reference, on random JSON-ish
bytes cut into random chunks (strings with escapes and brackets, chunks ending mid-escape)."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.server._body import _DepthScanner


def _reference(data: bytes, limit: int) -> bool:
    """The plain definition: nesting of [ and { outside strings, escapes inside strings."""
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in b"[{":
            depth += 1
            if depth > limit:
                return False
        elif byte in b"]}":
            depth -= 1
    return True


def _scan(chunks: list[bytes], limit: int) -> bool:
    scanner = _DepthScanner(limit)
    return all(scanner.feed(chunk) for chunk in chunks)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b",", b"\\\\"])),
    st.lists(st.integers(min_value=0, max_value=200), max_size=6),
    st.integers(min_value=0, max_value=6),
)
def test_the_scanner_agrees_with_the_reference(
    tokens: list[bytes], cuts: list[int], limit: int
) -> None:
    data = b"".join(tokens)
    assert _scan(_cut(data, cuts), limit) == _reference(data, limit)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.text(alphabet='ab"\\[]{}') | st.integers(min_value=-(2**63), max_value=2**63 - 1),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text('k["{'), inner, max_size=3)
        ),
        max_leaves=20,
    ),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    st.integers(min_value=0, max_value=5),
)
def test_real_json_split_anywhere(value: object, cuts: list[int], limit: int) -> None:
    data = orjson.dumps(value)
    assert _scan(_cut(data, cuts), limit) == _reference(data, limit)


def test_a_metric_batch_is_shallow_and_a_deep_body_is_refused() -> None:
    keys = b'{"metrics": {"keys": [' + b",".join([b'"lo[ss"'] * 5000) + b"]}}"
    assert _scan([keys[:1000], keys[1000:50_000], keys[50_000:]], 3)
    assert not _scan([b"[" * 33], 32)
    assert _scan([b'["\\', b'"[[[[', b'"]'], 1)  # the escaped quote does not end the string
