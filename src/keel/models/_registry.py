"""``Models``: the registry API over explicit stores — registry metadata, the content store
holding model files, and the tracking store the lineage comes from. ``keel.models.*``
functions call the ``Models`` on the configured stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import IntegrityError, InvalidInput, KeelError, NotFound
from keel.models import _names
from keel.models._bundle import MANIFEST, Bundle
from keel.models._records import (
    DatasetInput,
    ModelFile,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
)
from keel.models._uri import ModelRef, parse_uri

if TYPE_CHECKING:
    from keel.artifacts import ContentStore
    from keel.models._base import ModelRegistry
    from keel.tracking import Run, TrackingStore


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a version came from: its run (with params and metrics), the dataset versions
    that run read, and the code commit."""

    version: ModelVersion
    run: Run | None
    datasets: tuple[DatasetInput, ...]
    git_commit: str | None

    def to_dict(self) -> dict[str, Any]:
        run = None
        if self.run is not None:
            run = {
                "id": self.run.id,
                "project": self.run.project,
                "name": self.run.name,
                "status": str(self.run.status),
                "params": dict(self.run.params),
                "metrics": dict(self.run.metrics),
            }
        return {
            "model": self.version.uri,
            "run_id": self.version.run_id,
            "run": run,
            "datasets": [d.to_dict() for d in self.datasets],
            "git_commit": self.git_commit,
        }


class Models:
    """The model registry on explicit stores (see ``keel.models`` for the configured ones)."""

    def __init__(
        self, registry: ModelRegistry, content: ContentStore, tracking: TrackingStore
    ) -> None:
        self.registry = registry
        self.content = content
        self.tracking = tracking

    # -- reading ------------------------------------------------------------------------------

    def resolve(self, uri: str | ModelRef) -> ModelVersion:
        """The registered version a reference names (``models:/churn/3``, ``churn@champion``,
        ``models:/churn`` for the latest ready version). For ``runs:/<id>/<path>``, the newest
        version registered from those files."""
        ref = parse_uri(uri) if isinstance(uri, str) else uri
        if ref.run_id is not None:
            source = str(ref)
            found = [
                v for v in self.registry.list_versions(run_ids=[ref.run_id]) if v.source == source
            ]
            if not found:
                raise NotFound(f"no registered version was made from {source}; register it first")
            return found[-1]
        assert ref.name is not None
        if ref.version is not None:
            return self.registry.get_version(ref.name, ref.version)
        return self.registry.resolve_alias(ref.name, ref.alias or "latest")

    def get_version(self, name: str, version: int | str | None = None) -> ModelVersion:
        """``get_version("churn", 3)``, ``get_version("churn", "champion")`` or
        ``get_version("models:/churn@champion")``."""
        if version is None:
            return self.resolve(name)
        if isinstance(version, int) and not isinstance(version, bool):
            return self.registry.get_version(name, version)
        if isinstance(version, str) and version.isdigit():
            return self.registry.get_version(name, int(version))
        if isinstance(version, str):
            return self.registry.resolve_alias(_names.name(name), version)
        raise InvalidInput(f"must be a number or an alias, got {version!r}", field="version")

    def list_models(self) -> list[RegisteredModel]:
        return self.registry.list_models()

    def list_versions(self, name: str | None = None) -> list[ModelVersion]:
        return self.registry.list_versions(name)

    # -- changing -----------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self.registry.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.registry.delete_alias(name, alias)

    def set_tag(self, name: str, key: str, value: object, *, version: int | None = None) -> None:
        """Tag the model, or one version of it."""
        if version is None:
            self.registry.update_model(name, tags={key: str(value)})
        else:
            self.registry.update_version(name, version, tags={key: str(value)})

    def set_description(self, name: str, text: str, *, version: int | None = None) -> None:
        if version is None:
            self.registry.update_model(name, description=text)
        else:
            self.registry.update_version(name, version, description=text)

    def mark_trusted(
        self, name: str, version: int, *, reason: str, trusted: bool = True
    ) -> ModelVersion:
        return self.registry.mark_trusted(name, version, reason=reason, trusted=trusted)

    # -- registering --------------------------------------------------------------------------

    def _run_files(self, ref: ModelRef) -> tuple[Bundle, list[ModelFile]]:
        assert ref.run_id is not None and ref.path is not None
        prefix = ref.path.rstrip("/") + "/"
        files = [
            ModelFile(a.path[len(prefix) :], a.digest, a.size)
            for a in self.tracking.list_artifacts(ref.run_id, prefix)
            if a.path.startswith(prefix)
        ]
        manifest = next((f for f in files if f.path == MANIFEST), None)
        if manifest is None:
            raise NotFound(
                f"{ref} holds no model ({MANIFEST} missing); log it with keel.models.log"
            )
        return Bundle.from_json(self.content.get_bytes(manifest.digest)), files

    def _verify(self, files: Sequence[ModelFile]) -> None:
        """Every file is stored with the bytes its digest names (read and hashed once)."""
        for f in files:
            stored = self.content.verify(f.digest)
            if stored.size != f.size:
                raise IntegrityError(f"{f.path}: stored size {stored.size}, recorded {f.size}")

    def _lineage_of(self, run_id: str | None) -> tuple[tuple[DatasetInput, ...], str | None]:
        if run_id is None:
            return (), None
        run = self.tracking.get_run(run_id)
        datasets = tuple(
            DatasetInput(ref=io.ref, digest=io.digest, direction=io.direction)
            for io in run.io
            if io.kind == "dataset"
        )
        return datasets, run.env.git_commit

    def create_pending(
        self,
        name: str,
        bundle: Bundle,
        *,
        run_id: str | None,
        source: str,
        description: str = "",
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        datasets, commit = self._lineage_of(run_id)
        return self.registry.create_version(
            NewModelVersion(
                name=name,
                flavor=bundle.flavor,
                signature=bundle.signature,
                input_example=bundle.input_example,
                environment=bundle.environment,
                latency_ms=bundle.latency_ms,
                options=bundle.options,
                requires_trust=bundle.requires_trust,
                run_id=run_id,
                source=source,
                datasets=datasets,
                git_commit=commit,
                description=description,
                tags={k: str(v) for k, v in (tags or {}).items()},
            )
        )

    def finish(self, pending: ModelVersion, store: Any) -> ModelVersion:
        """Run ``store()`` (returns the files, stored), verify every file, and mark the
        version READY; on any failure mark it FAILED and raise."""
        try:
            files: list[ModelFile] = store()
            self._verify(files)
        except BaseException as exc:  # marked FAILED whatever stopped it, then re-raised
            try:
                self.registry.complete_version(
                    pending.name, pending.version, error=f"{type(exc).__name__}: {exc}"
                )
            except KeelError as error:
                exc.add_note(f"keel: {pending.uri} stays pending: {error}")
            raise
        return self.registry.complete_version(pending.name, pending.version, files=files)

    def register(
        self,
        uri: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Register the model logged at ``runs:/<id>/<path>`` as the next version of ``name``.
        Its files are not copied (the content store already holds them); each is verified."""
        _names.name(name)
        ref = parse_uri(uri)
        if ref.run_id is None:
            raise InvalidInput(f"expected runs:/<run id>/<path>, got {uri!r}", field="uri")
        bundle, files = self._run_files(ref)
        pending = self.create_pending(
            name, bundle, run_id=ref.run_id, source=str(ref), description=description, tags=tags
        )
        return self.finish(pending, lambda: files)

    # -- logging and loading (the module functions of keel.models, on these stores) ----------

    def log(self, model: Any, name: str | None = None, **options: Any) -> Any:
        """``keel.models.log`` on these stores (same arguments)."""
        from keel.models._log import log

        return log(self, model, name=name, **options)

    def load(self, uri: str | ModelVersion) -> Any:
        """``keel.models.load`` on these stores: a ``LoadedModel``."""
        from keel.models._load import load

        return load(self, uri)

    # -- lineage ------------------------------------------------------------------------------

    def lineage(self, uri: str) -> Lineage:
        """The version's run (params, metrics), datasets and commit."""
        version = self.resolve(uri)
        run = None
        if version.run_id is not None:
            try:
                run = self.tracking.get_run(version.run_id)
            except NotFound:
                run = None  # hard-deleted since; the version keeps its own lineage snapshot
        return Lineage(
            version=version, run=run, datasets=version.datasets, git_commit=version.git_commit
        )

    def models_using(self, dataset_ref: str) -> list[ModelVersion]:
        """Versions trained by runs that read ``dataset_ref`` (e.g. ``churn@v3``)."""
        runs = self.tracking.runs_using(dataset_ref, kind="dataset", direction="input")
        return self.registry.list_versions(run_ids=runs) if runs else []
