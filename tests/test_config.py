from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import Settings, find_home, normalize_artifacts_uri, normalize_tracking_uri
from keel.errors import ConfigError


def test_home_found_by_walking_up(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / ".keel").mkdir(parents=True)
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    assert find_home(deep) == root / ".keel"


def test_home_falls_back_to_user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The search starts outside any project (the autouse fixture's .keel is under tmp_path).
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert find_home(Path("/")) == tmp_path / "user" / ".keel"


def test_zero_config_defaults_live_under_home(keel_home: Path) -> None:
    s = Settings()
    assert s.home == keel_home.resolve()
    assert s.tracking_uri == f"sqlite:///{keel_home.resolve() / 'keel.db'}"
    assert s.artifacts_uri == str(keel_home.resolve() / "artifacts")


def test_env_beats_project_file(keel_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (keel_home.parent / "keel.toml").write_text(
        '[keel]\nmetric_batch_size = 7\nartifacts_uri = "s3://b/p"\n'
    )
    assert Settings().metric_batch_size == 7
    assert Settings().artifacts_uri == "s3://b/p"
    monkeypatch.setenv("KEEL_METRIC_BATCH_SIZE", "9")
    assert Settings().metric_batch_size == 9


def test_project_file_without_a_keel_table_is_fine(keel_home: Path) -> None:
    (keel_home.parent / "keel.toml").write_text("[gates.champion]\nmax_size_mb = 10\n")
    assert Settings().metric_batch_size == Settings.metric_batch_size  # the class default


def test_broken_project_file_names_the_file(keel_home: Path) -> None:
    (keel_home.parent / "keel.toml").write_text("[keel\n")
    with pytest.raises(ConfigError, match=r"keel\.toml: cannot read"):
        Settings()


def test_bad_setting_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.config import get_settings, reset_settings

    monkeypatch.setenv("KEEL_METRIC_QUEUE_SIZE", "-1")
    reset_settings()
    with pytest.raises(ConfigError, match="metric_queue_size"):
        get_settings()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("http://host:8080/", "http://host:8080"),
    ],
)
def test_tracking_uri_normalised(uri: str, expected: str) -> None:
    assert normalize_tracking_uri(uri) == expected


def test_sqlite_uri_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_tracking_uri("sqlite:///rel.db") == f"sqlite:///{tmp_path / 'rel.db'}"


@pytest.mark.parametrize("uri", ["mysql://x/y", "sqlite://", "sqlite:///:memory:"])
def test_bad_tracking_uri_names_the_setting(uri: str) -> None:
    with pytest.raises(ConfigError, match="KEEL_TRACKING_URI"):
        normalize_tracking_uri(uri)


def test_artifacts_uri_forms(tmp_path: Path) -> None:
    assert normalize_artifacts_uri("s3://bucket/pre/fix/") == "s3://bucket/pre/fix"
    assert normalize_artifacts_uri(f"file://{tmp_path}") == str(tmp_path)
    with pytest.raises(ConfigError, match="KEEL_ARTIFACTS_URI"):
        normalize_artifacts_uri("gs://bucket")
    with pytest.raises(ConfigError, match="bucket"):
        normalize_artifacts_uri("s3:///x")


def test_keyword_arguments_beat_the_environment(
    keel_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("keel_project", "from-env")  # any case, as the variables always were
    assert Settings().project == "from-env"
    assert Settings(project="given").project == "given"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KEEL_METRIC_BATCH_SIZE", "many"),
        ("KEEL_METRIC_BATCH_SIZE", "1.5"),
        ("KEEL_FLUSH_TIMEOUT_S", "soon"),
    ],
)
def test_unreadable_value_names_the_variable(
    keel_home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}: expected"):
        Settings()


def test_wrong_type_in_the_project_file_names_the_file(keel_home: Path) -> None:
    (keel_home.parent / "keel.toml").write_text('[keel]\nmetric_batch_size = "x"\n')
    with pytest.raises(ConfigError, match=r"keel\.toml: \[keel\] metric_batch_size: expected"):
        Settings()
