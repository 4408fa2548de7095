"""Moving a version between registries as one archive: ``export_model`` packs a version's
verified files into a ``.tar.gz``; ``import_model`` unpacks one with the single safe extractor
(``keel.artifacts._archive``: no ``..``, absolute or link members) and registers it."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from keel.artifacts._archive import extract_archive, pack_tree
from keel.errors import InvalidInput, PermissionDenied
from keel.models import _names
from keel.models._bundle import MANIFEST, Bundle
from keel.models._records import ModelFile, ModelVersion

if TYPE_CHECKING:
    from keel.models._registry import Models


def export_model(models: Models, uri: str, dest: str | Path) -> Path:
    """Write the version's files (each verified against its digest) to ``dest`` (.tar.gz)."""
    from keel.models._load import download

    version = models.resolve(uri)
    with tempfile.TemporaryDirectory(prefix="keel-export-") as tmp:
        download(models, version.files, Path(tmp))
        return pack_tree(tmp, dest)


def import_model(
    models: Models,
    archive: str | Path,
    name: str,
    *,
    trusted: bool = False,
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> ModelVersion:
    """Register the model in ``archive`` (made by ``export_model``) as the next version of
    ``name``. A pickle-flavour model needs ``trusted=True`` here and an admin's mark to load."""
    _names.name(name)
    with tempfile.TemporaryDirectory(prefix="keel-import-") as tmp:
        folder = Path(tmp) / "model"
        extract_archive(archive, folder)
        if not (folder / MANIFEST).is_file():
            raise InvalidInput(f"the archive holds no {MANIFEST}", field="archive")
        bundle = Bundle.from_json((folder / MANIFEST).read_bytes())
        if bundle.requires_trust and not trusted:
            raise PermissionDenied(
                f"the archive holds a {bundle.flavor} model, which runs code when loaded; "
                "import it with trusted=True (an admin must still mark the version trusted)"
            )
        pending = models.create_pending(
            name,
            bundle,
            run_id=None,
            source=f"archive:{Path(archive).name}",
            description=description,
            tags=tags,
        )

        def store() -> list[ModelFile]:
            return [
                ModelFile(r, ref.digest, ref.size) for r, ref in models.content.put_tree(folder)
            ]

        return models.finish(pending, store)
