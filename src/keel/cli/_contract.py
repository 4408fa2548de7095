"""``keel data contract infer|show`` and ``keel data validate``: contracts on datasets.

Wired into the ``keel data`` group by ``keel.cli._data``: ``app`` as ``contract`` and
``validate`` as a command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.data._validate import ValidationReport

app = typer.Typer(help="Data contracts: infer, store and show them.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("infer")
def infer(
    ref: Annotated[str, typer.Argument(help="A table version: NAME, NAME@vN or NAME@tag.")],
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="Key column (repeatable).")
    ] = None,
    save: Annotated[bool, typer.Option(help="Store it as the next contract of NAME.")] = True,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write here.")] = None,
) -> None:
    """Infer a contract from REF, print it as YAML and store it as the next contract of its
    name. Edit the YAML by hand and store the edit with `keel data contract save`."""
    from keel.data._contract_store import infer_dataset_contract, save_contract

    contract = infer_dataset_contract(ref, key=key or None)
    text = contract.to_yaml()
    if output is not None:
        output.write_text(text, encoding="utf-8")
    console.print(text, highlight=False, markup=False, end="")
    if save:
        number = save_contract(contract.name, text)
        console.print(f"# saved as contract {contract.name} v{number}", highlight=False)


@app.command("save")
def save(
    name: Annotated[str, typer.Argument(help="Dataset name the contract belongs to.")],
    path: Annotated[Path, typer.Argument(help="The contract YAML file.")],
) -> None:
    """Check the contract in PATH and store it as the next contract version of NAME."""
    from keel.data._contract_store import save_contract

    number = save_contract(name, _read(path))
    console.print(f"saved as contract {name} v{number}", highlight=False)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[int | None, typer.Option("--version", "-v")] = None,
) -> None:
    """Print the stored contract of NAME (the newest unless --version)."""
    from keel.data import default

    _, text = default().store.get_contract(name, version)
    console.print(text, highlight=False, markup=False, end="")


def _read(path: Path) -> str:
    from keel.errors import InvalidInput

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {exc}", field="contract") from exc


def validate(
    source: Annotated[str, typer.Argument(help="NAME@vN, or a CSV/TSV/Parquet/JSONL file.")],
    contract: Annotated[
        Path | None, typer.Option("--contract", "-c", help="Contract YAML (default: stored).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Dataset name, for a file source.")
    ] = None,
    quarantine: Annotated[
        bool, typer.Option("--quarantine", help="Store failing rows as NAME-quarantine.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Validate SOURCE against a contract; exit 1 when a check fails."""
    from keel.data._contract import Contract
    from keel.data._contract_store import validate_dataset, validate_file

    chosen = Contract.from_yaml(_read(contract)) if contract is not None else None
    if Path(source).is_file():
        report, stored = validate_file(source, contract=chosen, name=name, quarantine=quarantine)
    else:
        report, stored = validate_dataset(source, contract=chosen, quarantine=quarantine)
    if json:
        print_json({**report.to_dict(), "quarantine": stored})
    else:
        _print(report, stored)
    if not report.passed:
        raise typer.Exit(1)


def _print(report: ValidationReport, stored: str | None) -> None:
    rows = [
        (
            r.check,
            "skipped" if r.skipped else "ok" if r.passed else "FAILED",
            r.failed_rows or None,
            "; ".join(f"{e['index']}: {e['values']}" for e in r.examples[:3]) or r.message,
        )
        for r in report.results
    ]
    table(None, ["check", "result", "rows", "examples / detail"], rows)
    verdict = "passed" if report.passed else f"FAILED ({report.failed_row_count} rows)"
    console.print(f"{report.contract or 'contract'}: {report.rows} rows, {verdict}")
    if stored:
        console.print(f"failing rows stored as {stored}", highlight=False)
