"""``keel.models.package``: a self-contained serving bundle for one registered version.

The bundle holds the version's files as the ``export_model`` archive with each file's digest,
a ``requirements.txt`` pinning every package the model and Keel's server need to exact versions
(Keel itself as a wheel built from, or copied next to, the running installation), a
``Dockerfile`` and ``entrypoint.py``. At start the entrypoint checks the archive, registers it
in a local Keel home with ``import_model`` (no registry, database server or network needed),
checks the registered files against the recorded digests and runs ``keel serve``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import AlreadyExists, Conflict, InvalidInput, PermissionDenied, StoreError
from keel.models._records import ModelVersion, VersionStatus

if TYPE_CHECKING:
    from keel.models._registry import Models

FORMAT = 1
KEEL_DIST = "keel-mlops"
ARCHIVE = "model.tar.gz"
MANIFEST = "bundle.json"
PORT = 8000


@dataclass(frozen=True, slots=True)
class PackagedBundle:
    """What ``package`` wrote: the folder, the version it serves and the pinned packages."""

    path: Path
    uri: str
    requirements: tuple[str, ...]
    base_image: str
    keel_wheel: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "uri": self.uri,
            "requirements": list(self.requirements),
            "base_image": self.base_image,
            "keel_wheel": self.keel_wheel,
        }


def package(
    uri: str,
    out: str | Path,
    *,
    base_image: str | None = None,
    models: Models | None = None,
) -> PackagedBundle:
    """Write a serving bundle for ``uri`` (``churn@champion``, ``churn/3``) into ``out``, a
    folder that must not exist yet (or be empty). The folder appears complete or not at all."""
    from keel.models import default

    registry = models if models is not None else default()
    version = registry.resolve(uri)
    _check_servable(version)
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AlreadyExists(f"{dest} exists and is not an empty folder; pick a new --out")
    python_minor = ".".join(version.environment.python_version.split(".")[:2])
    if not python_minor:
        raise InvalidInput(f"{version.uri} records no Python version", field="uri")
    image = base_image or f"python:{python_minor}-slim-bookworm"
    if ":" not in image or image.endswith(":latest"):
        raise InvalidInput(f"pin the base image to a tag, not {image!r}", field="base_image")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the destination and renamed into place: a crash leaves no partial bundle.
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the bundle from a Docker build's user
        from keel.models._exchange import export_model

        export_model(registry, version.uri, tmp / ARCHIVE)
        wheel = _keel_wheel(tmp / "wheels")
        pins = requirements(version.environment.packages)
        lines = [*pins, f"./wheels/{wheel.name}"]
        (tmp / "requirements.txt").write_text(
            f"# Exact versions for serving {version.uri}; install with:\n"
            "#   pip install --no-deps -r requirements.txt   (from this folder)\n"
            + "\n".join(lines)
            + "\n"
        )
        (tmp / MANIFEST).write_text(json.dumps(_manifest(version, tmp / ARCHIVE), indent=2))
        (tmp / "entrypoint.py").write_text(ENTRYPOINT)
        (tmp / "Dockerfile").write_text(dockerfile(image))
        (tmp / ".dockerignore").write_text(".keel-home/\n")
        if dest.exists():
            dest.rmdir()
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PackagedBundle(dest, version.uri, tuple(lines), image, wheel.name)


def _check_servable(version: ModelVersion) -> None:
    if version.status is not VersionStatus.READY:
        raise InvalidInput(f"{version.uri} is {version.status}; only ready versions", field="uri")
    if version.signature is None or not version.signature.inputs:
        raise InvalidInput(f"{version.uri} has no signature, so it cannot be served", field="uri")
    if version.requires_trust and not version.trusted:
        raise PermissionDenied(
            f"{version.uri} runs code when loaded and is not trusted; an admin must run "
            f"`keel models trust {version.name} {version.version} --reason …` first"
        )


def _manifest(version: ModelVersion, archive: Path) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model": {
            "name": version.name,
            "version": version.version,
            "uri": version.uri,
            "flavor": version.flavor,
            "requires_trust": version.requires_trust,
            "trust_reason": version.trust_reason if version.requires_trust else "",
        },
        "files": [f.to_dict() for f in version.files],
        "archive": {"path": ARCHIVE, "sha256": _sha256(archive)},
        "environment": version.environment.to_dict(),
        "keel_version": metadata.version(KEEL_DIST),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- requirements ----------------------------------------------------------------------------


def requirements(model_packages: Mapping[str, str]) -> list[str]:
    """``name==version`` lines for the model's recorded packages, Keel's runtime dependencies
    and everything they need in turn (so ``pip install --no-deps`` is complete), versions
    taken from the recorded environment first and this installation otherwise."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    recorded = {canonicalize_name(k): (k, v) for k, v in dict(model_packages).items()}
    pinned: dict[str, tuple[str, str]] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(KEEL_DIST, frozenset())]
    todo += [(name, frozenset()) for name, _ in recorded.values()]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise InvalidInput(
                f"{name} is needed to serve the model but is not installed here, so its exact "
                "version and dependencies are unknown; install the model's environment first",
                field="uri",
            ) from exc
        if key != canonicalize_name(KEEL_DIST):
            pinned[key] = recorded.get(key, (dist.metadata["Name"], dist.version))
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in sorted(extras)] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return [f"{name}=={version}" for _, (name, version) in sorted(pinned.items())]


def _keel_wheel(folder: Path) -> Path:
    """A wheel of the running Keel in ``folder``: built from its source tree when Keel is
    installed from one (editable), else the wheel Keel was installed from."""
    folder.mkdir(parents=True, exist_ok=True)
    source = _source_tree()
    if source is None:
        raise Conflict(
            "Keel is not installed from a source tree, and no wheel of it is at hand; "
            "install Keel from its source (pip install -e) to package models"
        )
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is not None:
        cmd = [uv, "build", "--wheel", "--out-dir", str(folder), str(source)]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(folder), str(source)]
    proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        cmd, capture_output=True, text=True, check=False, timeout=300
    )
    wheels = sorted(folder.glob("keel_mlops-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise StoreError(f"building Keel's wheel failed: {(proc.stderr or proc.stdout)[-2000:]}")
    for extra in folder.iterdir():
        if extra != wheels[0]:
            extra.unlink()  # uv leaves a .gitignore; the bundle ships only the wheel
    return wheels[0]


def _source_tree() -> Path | None:
    dist = metadata.distribution(KEEL_DIST)
    text = dist.read_text("direct_url.json")
    if text:
        info = json.loads(text)
        url = str(info.get("url", ""))
        if url.startswith("file://") and info.get("dir_info") is not None:
            path = Path(url.removeprefix("file://"))
            if (path / "pyproject.toml").is_file():
                return path
    return None


# --- the files written into the bundle --------------------------------------------------------


def dockerfile(image: str) -> str:
    health = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{PORT}/v2/health/ready', "
        "timeout=2).status != 200)"
    )
    return f"""\
# A Keel serving image for one model version (written by `keel models package`).
FROM {image}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    KEEL_HOME=/home/keel/.keel

RUN groupadd --system --gid 10001 keel \\
    && useradd --system --uid 10001 --gid keel --create-home --home-dir /home/keel keel

WORKDIR /bundle
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir --no-deps -r requirements.txt
COPY bundle.json entrypoint.py {ARCHIVE} ./

USER keel
EXPOSE {PORT}
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "{health}"]
ENTRYPOINT ["python", "/bundle/entrypoint.py"]
# The container's port must be reachable from outside it; put an authenticating proxy in front.
CMD ["--host", "0.0.0.0", "--port", "{PORT}", "--allow-remote"]
"""


ENTRYPOINT = '''\
#!/usr/bin/env python3
"""Serve this bundle's model: check the archive, register it in a local Keel home (no registry
needed), check every file against the digest recorded at packaging, then run `keel serve`.

    python entrypoint.py [--host H] [--port P] [--home DIR] [any other `keel serve` option]
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sha256(path):
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\\n\\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", default=os.environ.get("PORT", "8000"))
    ap.add_argument("--home", default=os.environ.get("KEEL_HOME") or str(HERE / ".keel-home"))
    args, rest = ap.parse_known_args()
    manifest = json.loads((HERE / "bundle.json").read_text())
    model = manifest["model"]
    archive = HERE / manifest["archive"]["path"]
    if sha256(archive) != manifest["archive"]["sha256"]:
        sys.exit(f"{archive} does not match the sha256 recorded in bundle.json; rebuild the bundle")
    os.environ["KEEL_HOME"] = args.home
    os.environ.pop("KEEL_TRACKING_URI", None)
    os.environ.pop("KEEL_ARTIFACTS_URI", None)
    import keel.models
    from keel.errors import NotFound

    name = model["name"]
    trusted = bool(model["requires_trust"])
    try:
        version = keel.models.get_version(name, 1)  # a restart: registered by the last start
    except NotFound:
        version = keel.models.import_model(
            archive, name, trusted=trusted, description=f"bundle of {model['uri']}"
        )
        if trusted:
            reason = f"packaged from {model['uri']}, trusted there: {model['trust_reason']}"
            version = keel.models.mark_trusted(name, version.version, reason=reason)
    want = {f["path"]: f["digest"] for f in manifest["files"]}
    have = {f.path: f.digest for f in version.files}
    if want != have:
        sys.exit(f"{version.uri} in {args.home} does not hold the files bundle.json records")
    cmd = [sys.executable, "-m", "keel", "serve", version.ref, "--host", args.host]
    os.execv(sys.executable, [*cmd, "--port", str(args.port), *rest])


if __name__ == "__main__":
    main()
'''
