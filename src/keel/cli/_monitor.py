"""``keel monitor``: drift between a reference and current data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import console, print_json, table

app = typer.Typer(help="Monitor data and predictions: drift.", no_args_is_help=True)


@app.command("drift")
def drift(  # noqa: PLR0917 - Typer passes every option positionally
    reference: Annotated[
        str,
        typer.Argument(help="Dataset ref (NAME@vN), a CSV/Parquet file, or a saved profile .json."),
    ],
    current: Annotated[str, typer.Argument(help="Dataset ref (NAME@vN) or a CSV/Parquet file.")],
    columns: Annotated[
        list[str] | None, typer.Option("--columns", "-c", help="Column to test (repeatable).")
    ] = None,
    test: Annotated[
        str | None,
        typer.Option(
            "--test",
            help="One test for every column it fits: ks, chi2, psi, "
            "wasserstein, jensenshannon (default: chosen per column).",
        ),
    ] = None,
    multivariate: Annotated[
        bool, typer.Option("--multivariate", help="Add the domain-classifier test.")
    ] = False,
    save_reference: Annotated[
        Path | None,
        typer.Option("--save-reference", help="Also write the reference profile as JSON here."),
    ] = None,
    drift_share: Annotated[
        float,
        typer.Option(
            "--drift-share",
            min=0.0,
            max=1.0,
            help="Share of drifted columns that is dataset drift.",
        ),
    ] = 0.5,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 2 when the dataset drifted.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Test each column of CURRENT for drift from REFERENCE and print the verdicts."""
    from keel.monitoring import assess_drift
    from keel.monitoring._sources import read_reference, read_table, write_reference

    profile = read_reference(reference)
    label, data = read_table(current, field="current")
    report = assess_drift(
        profile,
        data,
        columns=columns,
        tests=test,
        multivariate=multivariate,
        drift_share=drift_share,
        current_name=label,
    )
    if save_reference is not None:
        write_reference(profile, save_reference)
    if json:
        print_json(report.to_dict())
    else:
        table(
            f"Drift: {report.current} against {report.reference}",
            ["column", "type", "test", "score", "threshold", "verdict", "reason"],
            [
                [c.column, c.type, c.test, c.score, c.threshold, c.status, c.reason]
                for c in report.columns
            ],
        )
        tested = len(report.tested)
        console.print(
            f"Drifted: {len(report.drifted_columns)} of {tested} tested columns "
            f"({report.drift_share:.0%}; dataset drift at {report.drift_share_threshold:.0%}): "
            + ("[bold red]DRIFT[/]" if report.dataset_drift else "[green]no dataset drift[/]"),
            highlight=False,
        )
        m = report.multivariate
        if m is not None:
            auc = "n/a" if m.auc is None else f"{m.auc:.3f} ± {m.auc_std or 0:.3f}"
            top = ", ".join(f"{k} {v:.2f}" for k, v in m.importances[:5])
            console.print(
                f"Domain classifier: AUC {auc} (threshold {m.threshold}) {m.status}"
                + (f"; relies on {top}" if top else "")
                + (f"; {m.reason}" if m.status == "insufficient_data" else ""),
                highlight=False,
            )
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(2)
