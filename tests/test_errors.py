from __future__ import annotations

import pytest

from keel import errors


def test_invalid_input_names_field_and_is_a_value_error() -> None:
    exc = errors.InvalidInput("must be positive", field="max_results")
    assert str(exc) == "max_results: must be positive"
    assert isinstance(exc, ValueError)
    assert exc.field == "max_results"


def test_query_syntax_error_points_at_position() -> None:
    exc = errors.QuerySyntaxError("expected a value", query="metrics.a >", position=11)
    lines = str(exc).splitlines()
    assert lines[0] == "filter: expected a value at position 11"
    assert lines[2].index("^") - 2 == 11


def test_missing_dependency_says_what_to_install() -> None:
    exc = errors.MissingDependency("s3fs", extra="s3", purpose="S3 artifact storage")
    assert "pip install 'keel-mlops[s3]'" in str(exc)
    assert isinstance(exc, ImportError)


@pytest.mark.parametrize(
    "cls",
    [
        errors.NotFound,
        errors.AlreadyExists,
        errors.Conflict,
        errors.IntegrityError,
        errors.StoreUnavailable,
        errors.Unauthenticated,
        errors.PermissionDenied,
        errors.RateLimited,
        errors.LimitExceeded,
    ],
)
def test_every_error_is_a_keel_error(cls: type[Exception]) -> None:
    assert issubclass(cls, errors.KeelError)
