"""``keel models package``: a self-contained serving bundle (Dockerfile, pinned requirements,
Keel's wheel, the model's files). ``keel.cli._models`` mounts it on ``keel models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import console, print_json


def package(
    uri: Annotated[
        str,
        typer.Argument(help="The version to package: churn@champion, churn/3, models:/churn/3."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write (must not exist, or be empty).")
    ],
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            help="Docker base image with a pinned tag (default: python:X.Y-slim-bookworm for "
            "the Python the model was logged with).",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write a serving bundle for one version: its files with their digests, an exact
    requirements.txt (with a wheel of this Keel), a Dockerfile (non-root, HEALTHCHECK) and
    entrypoint.py, which serves the model without a registry. See docs/models-release.md."""
    import keel.models

    bundle = keel.models.package(uri, out, base_image=base_image)
    if json:
        print_json(bundle.to_dict())
        return
    console.print(
        f"Packaged {bundle.uri} into {bundle.path} ({len(bundle.requirements)} pinned "
        f"requirements, base image {bundle.base_image}).\n"
        f"  run here:     cd {bundle.path} && pip install --no-deps -r requirements.txt "
        "&& python entrypoint.py --port 8000\n"
        f"  or in Docker: docker build -t model {bundle.path} && docker run -p 8000:8000 model",
        highlight=False,
        markup=False,
    )
