"""Contracts on stored datasets: versioned contract texts under the dataset's name, validation
of a version, and quarantine of its failing rows as a version of ``NAME-quarantine``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keel.data._contract import Contract, infer_contract
from keel.data._records import TABLE
from keel.data._validate import FAILED_CHECKS_COLUMN, ValidationReport, validate
from keel.errors import InvalidInput

QUARANTINE_SUFFIX = "-quarantine"


def save_contract(name: str, contract: Contract | str) -> int:
    """Store ``contract`` (a ``Contract`` or YAML text, checked first so a bad one is never
    stored; hand-written text is kept as written) as the next version for dataset ``name``."""
    from keel.data import _names, default

    _names.name(name)
    if isinstance(contract, Contract):
        text = contract.to_yaml()
    elif isinstance(contract, str):
        Contract.from_yaml(contract)
        text = contract
    else:
        raise InvalidInput("expected a Contract or YAML text", field="contract")
    return default().store.save_contract(name, text)


def load_contract(name: str, version: int | None = None) -> Contract:
    """The contract stored for dataset ``name`` (newest unless ``version``); ``NotFound``."""
    from keel.data import default

    _, text = default().store.get_contract(name, version)
    return Contract.from_yaml(text)


def infer_dataset_contract(ref: str, *, key: str | list[str] | None = None) -> Contract:
    """A contract inferred from the table version ``ref`` (``name@vN``), named after it; the
    version's declared key is used unless ``key`` is given."""
    from keel.data import default

    datasets = default()
    version = datasets.store.resolve(ref)
    frame = _table(datasets, version)
    return infer_contract(frame, name=version.name, key=key or list(version.key) or None)


def _table(datasets: Any, version: Any) -> Any:
    if version.kind != TABLE:
        raise InvalidInput(f"{version.ref} is a {version.kind}, not a table", field="ref")
    return datasets.get(version)


def validate_dataset(
    ref: str, *, contract: Contract | None = None, quarantine: bool = False
) -> tuple[ValidationReport, str | None]:
    """Validate the table version ``ref`` against ``contract`` (default: the newest stored for
    its name). With ``quarantine``, failing rows are added as a version of ``NAME-quarantine``
    (with a ``_keel_failed_checks`` column) whose ref is returned with the report."""
    from keel.data import default

    datasets = default()
    version = datasets.store.resolve(ref)
    chosen = contract if contract is not None else load_contract(version.name)
    report = validate(_table(datasets, version), chosen, quarantine=quarantine)
    return report, _quarantine(report, version.name, version.ref)


def validate_file(
    path: str | os.PathLike[str],
    *,
    contract: Contract | None = None,
    name: str | None = None,
    quarantine: bool = False,
) -> tuple[ValidationReport, str | None]:
    """Validate a CSV/TSV, Parquet or JSON-lines file against ``contract`` (default: the newest
    stored for ``name``). Quarantined rows go to ``NAME-quarantine``, so it needs ``name``."""
    from keel.data._ingest import read_file

    if contract is None and name is None:
        raise InvalidInput(
            "give a contract or the dataset name whose contract to use", field="contract"
        )
    if quarantine and name is None:
        raise InvalidInput("quarantine needs the dataset name", field="name")
    chosen = contract if contract is not None else load_contract(str(name))
    report = validate(read_file(Path(path)), chosen, quarantine=quarantine)
    return report, _quarantine(report, name, str(path)) if name else None


def _quarantine(report: ValidationReport, name: str, source: str) -> str | None:
    from keel.data import default

    failed = report.failed_rows
    if failed is None or failed.empty:
        return None
    stored = default().add(
        failed,
        name=name + QUARANTINE_SUFFIX,
        description=f"rows of {source} failing {', '.join(_checks(failed))}",
        source_uri=source,
    )
    return stored.ref


def _checks(failed: Any) -> list[str]:
    names: set[str] = set()
    for labels in failed[FAILED_CHECKS_COLUMN].unique():
        names.update(str(labels).split(","))
    return sorted(names)
