"""Loading never runs code from a model file unless an admin trusted it; stored files are
checked before they are opened; archives cannot write outside their folder; skops files with
types outside Keel's list are refused."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models
from keel.artifacts import object_key
from keel.errors import IntegrityError, InvalidInput, NotFound, PermissionDenied, UnsafePath


def _swap(digest: str, data: bytes) -> None:
    """Overwrite a stored object in place, as an attacker with bucket access would."""
    backend = keel.models.default().content.backend
    path = Path(backend.uri.removeprefix("file://")) / object_key(digest)
    path.chmod(0o644)
    path.write_bytes(data)


def test_pickle_needs_trusted_to_log(helpers_path: Path, tmp_path: Path) -> None:
    from keel_test_nets import Payload  # type: ignore[import-not-found]

    marker = tmp_path / "pwned"
    with pytest.raises(InvalidInput, match="no safe format"):
        keel.models.log(Payload(str(marker)), "evil")
    with pytest.raises(PermissionDenied, match="trusted=True"):
        keel.models.log(Payload(str(marker)), "evil", flavor="pickle")
    with pytest.raises(NotFound):
        keel.models.get_version("evil", 1)
    assert not marker.exists()


def test_a_trusted_pickle_loads_only_after_an_admin_marks_it(
    helpers_path: Path, tmp_path: Path
) -> None:
    from keel_test_nets import Payload

    marker = tmp_path / "pwned"
    mv = keel.models.log(
        Payload(str(marker)), "evil", flavor="pickle", trusted=True, signature_from=np.ones((2, 2))
    )
    assert isinstance(mv, keel.models.ModelVersion)
    assert (mv.requires_trust, mv.trusted) == (True, False)
    with pytest.raises(PermissionDenied, match="keel models trust evil 1"):
        keel.models.load("models:/evil/1")
    assert not marker.exists()  # the payload did not run
    keel.models.mark_trusted("evil", 1, reason="test: prove the gate is the only barrier")
    with pytest.raises(InvalidInput, match="no predict"):
        keel.models.load("models:/evil/1")
    assert marker.exists()  # once trusted, the file's code runs: that is what trust means
    keel.models.mark_trusted("evil", 1, reason="revoked", trusted=False)
    marker.rmdir()
    with pytest.raises(PermissionDenied):
        keel.models.load("models:/evil/1")
    assert not marker.exists()


def test_trusted_pickle_round_trip_and_joblib(helpers_path: Path) -> None:
    from keel_test_nets import Echo

    x = np.arange(6.0).reshape(3, 2)
    for serializer in ("pickle", "joblib"):
        name = f"echo-{serializer}"
        keel.models.log(
            Echo(),
            name,
            flavor="pickle",
            trusted=True,
            signature_from=x,
            config={"serializer": serializer},
        )
        keel.models.mark_trusted(name, 1, reason="our own code")
        np.testing.assert_array_equal(keel.models.load(f"{name}/1").predict(x), x * 2)


def test_a_manifest_cannot_claim_away_the_trust_check(helpers_path: Path, tmp_path: Path) -> None:
    """A run's files saying "pickle, no trust needed" are still treated as needing trust."""
    from keel_test_nets import Payload

    marker = tmp_path / "pwned"
    folder = tmp_path / "forged"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(Payload(str(marker))))
    (folder / "keel-model.json").write_text(
        '{"format": 1, "flavor": "pickle", "options": {"file": "model.pkl"}, '
        '"requires_trust": false}'
    )
    with keel.start_run(project="p") as run:
        keel.log_artifacts(folder, "model")
    with pytest.raises(PermissionDenied):
        keel.models.load(f"runs:/{run.id}/model")
    mv = keel.models.register(f"runs:/{run.id}/model", "forged")
    assert mv.requires_trust
    with pytest.raises(PermissionDenied):
        keel.models.load("models:/forged/1")
    # and a pickle wearing a skops name is not unpickled by the skops flavour
    (folder / "model.skops").write_bytes(pickle.dumps(Payload(str(marker))))
    (folder / "keel-model.json").write_text(
        '{"format": 1, "flavor": "sklearn", "options": {"file": "model.skops"}}'
    )
    with keel.start_run(project="p") as run2:
        keel.log_artifacts(folder, "model")
    with pytest.raises(InvalidInput, match="skops"):
        keel.models.load(f"runs:/{run2.id}/model")
    assert not marker.exists()


def test_a_file_swapped_after_registration_is_caught_before_it_is_opened(
    helpers_path: Path, tmp_path: Path
) -> None:
    from keel_test_nets import Echo, Payload

    x = np.ones((2, 2))
    keel.models.log(Echo(), "echo", flavor="pickle", trusted=True, signature_from=x)
    keel.models.mark_trusted("echo", 1, reason="our own code")
    mv = keel.models.get_version("echo", 1)
    pkl = next(f for f in mv.files if f.path == "model.pkl")
    marker = tmp_path / "pwned"
    _swap(pkl.digest, pickle.dumps(Payload(str(marker))))
    with pytest.raises(IntegrityError):
        keel.models.load("models:/echo/1")
    assert not marker.exists()  # the swapped pickle was never opened


def test_a_swapped_skops_file_is_caught(churn: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = churn
    x = x[["tenure", "charges"]]
    mv = keel.models.log(LogisticRegression().fit(x, y), "lr", signature_from=x)
    assert isinstance(mv, keel.models.ModelVersion)
    skops_file = next(f for f in mv.files if f.path == "model.skops")
    _swap(skops_file.digest, b"PK\x03\x04 something else entirely")
    with pytest.raises(IntegrityError):
        keel.models.load("lr@latest")


def test_skops_types_outside_the_allow_list_are_refused(
    helpers_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops.io as sio
    from keel_test_nets import Snitch
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    marker = tmp_path / "constructed"
    monkeypatch.setenv("KEEL_TEST_MARKER", str(marker))
    scaler = StandardScaler().fit(np.ones((3, 2)))
    scaler.snitch = Snitch()  # an attribute of a type Keel does not trust
    folder = tmp_path / "m"
    folder.mkdir()
    sio.dump(Pipeline([("s", scaler)]), folder / "model.skops")
    assert "keel_test_nets.Snitch" in sio.get_untrusted_types(file=folder / "model.skops")
    from keel.models.flavors.sklearn import SklearnFlavor

    with pytest.raises(PermissionDenied, match="trusted list"):
        SklearnFlavor().load(folder, {"file": "model.skops"})
    assert not marker.exists()
    # and such a model cannot be logged either: the round trip at logging time refuses it
    with pytest.raises(PermissionDenied):
        keel.models.log(scaler, "snitch", signature_from=np.ones((3, 2)))
    assert not marker.exists()
    with pytest.raises(NotFound):
        keel.models.get_version("snitch", 1)


def _hostile_archive(path: Path, name: str, kind: bytes = tarfile.REGTYPE) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        manifest = b'{"format": 1, "flavor": "sklearn", "options": {"file": "model.skops"}}'
        info = tarfile.TarInfo("keel-model.json")
        info.size = len(manifest)
        tf.addfile(info, io.BytesIO(manifest))
        evil = tarfile.TarInfo(name)
        evil.type = kind
        if kind == tarfile.SYMTYPE:
            evil.linkname = "/etc/passwd"
            tf.addfile(evil)
        else:
            evil.size = 1
            tf.addfile(evil, io.BytesIO(b"x"))
    return path


@pytest.mark.parametrize(
    ("member", "kind"),
    [
        ("../escape", tarfile.REGTYPE),
        ("/tmp/abs-escape", tarfile.REGTYPE),
        ("model.skops", tarfile.SYMTYPE),
    ],
    ids=["dotdot", "absolute", "symlink"],
)
def test_model_archives_with_unsafe_members_are_refused(
    tmp_path: Path, member: str, kind: bytes
) -> None:
    archive = _hostile_archive(tmp_path / "bundle.tar.gz", member, kind)
    with pytest.raises(UnsafePath):
        keel.models.import_model(archive, "imported")
    with pytest.raises(NotFound):
        keel.models.get_version("imported", 1)
    assert not (tmp_path / "escape").exists()


def test_export_import_round_trip(numeric: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = numeric
    model = DecisionTreeClassifier(max_depth=3).fit(x, y)
    keel.models.log(model, "tree", signature_from=x)
    archive = keel.models.export_model("tree/1", tmp_path / "tree.tar.gz")
    mv = keel.models.import_model(archive, "tree-copy")
    assert mv.source == "archive:tree.tar.gz" and mv.signature is not None
    np.testing.assert_array_equal(keel.models.load("tree-copy/1").predict(x), model.predict(x))


@pytest.mark.parametrize("example", ["/etc/passwd.npy", "../../secret.npy", "model.skops"])
def test_a_manifest_cannot_point_the_example_outside_the_model(
    tmp_path: Path, example: str
) -> None:
    folder = tmp_path / "forged"
    folder.mkdir()
    manifest = {"format": 1, "flavor": "sklearn", "options": {}, "input_example": example}
    (folder / "keel-model.json").write_text(json.dumps(manifest))
    with keel.start_run(project="p") as run:
        keel.log_artifacts(folder, "model")
    with pytest.raises(InvalidInput, match="input_example"):
        keel.models.register(f"runs:/{run.id}/model", "forged")
    with pytest.raises(NotFound):
        keel.models.get_version("forged", 1)
