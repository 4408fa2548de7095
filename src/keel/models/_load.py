"""``load``: a registered version (or a run's model) as an object with ``predict``.

The order is the security argument: the version must be READY; a version whose flavour runs
code from its files (pickle) must be marked trusted by an admin, checked before a byte is
read; every file is downloaded into a private temp folder and its BLAKE3 digest and size are
checked against the manifest recorded at registration (``IntegrityError`` otherwise) before the
flavour opens any of them. Inputs are checked against the signature on every call.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import Conflict, IntegrityError, PermissionDenied
from keel.models import _bundle, _signature
from keel.models._records import ModelFile, ModelVersion, Signature, VersionStatus
from keel.models._uri import ModelRef, parse_uri
from keel.models.flavors import Loaded, get
from keel.models.flavors._base import library_errors

if TYPE_CHECKING:
    from keel.models._registry import Models


class LoadedModel:
    """A loaded model. ``predict(data)`` (and ``predict_proba(data)`` where the flavour has
    it) check ``data`` against the signature first: a missing column, a wrong dtype or a
    wrong shape raises ``InvalidInput`` naming the column, for the whole batch at once."""

    predict_proba: Callable[[Any], Any]  # set only where the flavour has it

    def __init__(
        self,
        loaded: Loaded,
        *,
        uri: str,
        flavor: str,
        signature: Signature | None,
        version: ModelVersion | None,
        folder: Path,
        example: str | None,
    ) -> None:
        self._loaded = loaded
        self._folder = folder
        # The folder (PythonModel artifacts, the example) lives as long as this object.
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self._example = example
        self.uri = uri
        self.flavor = flavor
        self.signature = signature
        self.version = version
        if loaded.predict_proba is not None:
            proba = loaded.predict_proba
            self.predict_proba = lambda data: self._call(proba, data)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.uri} flavor={self.flavor}>"

    @property
    def raw(self) -> Any:
        """The library's own model object (estimator, booster, session, module …)."""
        return self._loaded.raw

    def _call(self, method: Callable[[Any], Any], data: Any) -> Any:
        prepared = _signature.enforce(self.signature, data)
        with library_errors(f"{self.uri} could not predict this input", "input"):
            return method(prepared)

    def predict(self, data: Any) -> Any:
        return self._call(self._loaded.predict, data)

    def input_example(self) -> Any:
        """The example stored with the model (a DataFrame or an array), or None."""
        if self._example is None:
            return None
        return _bundle.read_example(self._folder, self._example)

    def close(self) -> None:
        """Remove the model's local files now rather than when garbage-collected."""
        self._cleanup()

    def __enter__(self) -> LoadedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def download(models: Models, files: Sequence[ModelFile], folder: Path) -> None:
    """Fetch every file, each verified against its recorded digest and size before anything
    is opened (``ContentStore.get_file`` renames into place only after the hash matched)."""
    from keel.artifacts import safe_relpath

    for f in files:
        target = folder.joinpath(*safe_relpath(f.path, field="files.path").split("/"))
        got = models.content.get_file(f.digest, target)
        if got.size != f.size:
            raise IntegrityError(f"{f.path}: {got.size} bytes stored, {f.size} recorded")


def _open(
    models: Models,
    *,
    uri: str,
    bundle: _bundle.Bundle,
    files: Sequence[ModelFile],
    version: ModelVersion | None,
) -> LoadedModel:
    folder = Path(tempfile.mkdtemp(prefix="keel-load-"))
    try:
        download(models, files, folder)
        with library_errors("the model's files could not be loaded", "model"):
            loaded = get(bundle.flavor).load(folder, bundle.options)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return LoadedModel(
        loaded,
        uri=uri,
        flavor=bundle.flavor,
        signature=bundle.signature,
        version=version,
        folder=folder,
        example=bundle.input_example,
    )


def load(models: Models, uri: str | ModelVersion) -> LoadedModel:
    if isinstance(uri, ModelVersion):
        uri = uri.uri
    ref: ModelRef = parse_uri(uri)
    if ref.run_id is not None:
        bundle, files = models._run_files(ref)
        if bundle.requires_trust:
            raise PermissionDenied(
                f"{ref} is a {bundle.flavor} model, which runs code when loaded; register it "
                "and have an admin mark the version trusted (keel models trust NAME VERSION)"
            )
        return _open(models, uri=str(ref), bundle=bundle, files=files, version=None)
    version = models.resolve(ref)
    if version.status is not VersionStatus.READY:
        raise Conflict(
            f"{version.uri} is {version.status}"
            + (f" ({version.error})" if version.error else "")
            + "; only ready versions load"
        )
    if (version.requires_trust or get(version.flavor).requires_trust) and not version.trusted:
        raise PermissionDenied(
            f"{version.uri} is a {version.flavor} model, which runs code from its file when "
            f"loaded; an admin must mark it trusted first: keel models trust {version.name} "
            f"{version.version} --reason '…'"
        )
    bundle = _bundle.Bundle(
        flavor=version.flavor,
        options=version.options,
        signature=version.signature,
        input_example=version.input_example,
        environment=version.environment,
        latency_ms=version.latency_ms,
        requires_trust=version.requires_trust,
    )
    return _open(models, uri=version.uri, bundle=bundle, files=version.files, version=version)
