"""Model cards, regenerated from stored facts every time: the registry (version, signature,
environment, files, lineage), the data store (training dataset versions and their profiles),
the release store (evaluations, gate decisions, approvals, the hand-written fields) and the
tracking store (the training run).

Two renderings of one :class:`ModelCard`: Markdown, and a self-contained HTML page (inline CSS
and SVG charts, no scripts, a Content-Security-Policy that forbids loading anything). Jinja2
escapes every value: HTML autoescaping for the page, and Markdown/HTML escaping of every
expression for the Markdown file, so a description cannot inject markup into either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel import _time
from keel.errors import InvalidInput, KeelError, NotFound
from keel.models import _card_svg
from keel.models._release_records import (
    CARD_FIELDS,
    Approval,
    EvaluationResult,
    PromotionDecision,
)

if TYPE_CHECKING:
    from keel.models._records import ModelVersion
    from keel.models._registry import Models
    from keel.models._release_base import ReleaseStore

_TEMPLATES = Path(__file__).with_name("templates")
_MAX_EVALUATIONS = 5
_MAX_DECISIONS = 20
_MAX_PROFILE_COLUMNS = 60
FORMATS = ("md", "html")


@dataclass(frozen=True, slots=True)
class DatasetFacts:
    ref: str
    digest: str | None
    found: bool
    rows: int | None = None
    size: int | None = None
    columns: tuple[dict[str, Any], ...] = ()  # one summary per column of the profile


@dataclass(frozen=True, slots=True)
class ModelCard:
    """Everything a card shows, gathered from the stores at one moment."""

    version: ModelVersion
    fields: Mapping[str, tuple[str, int]]
    author: str | None
    run: Mapping[str, Any] | None
    datasets: tuple[DatasetFacts, ...]
    evaluations: tuple[EvaluationResult, ...]
    decisions: tuple[PromotionDecision, ...]
    approvals: tuple[Approval, ...]
    generated_ms: int = field(default_factory=_time.now_ms)

    @property
    def title(self) -> str:
        return f"{self.version.name} v{self.version.version}"


def gather(models: Models, releases: ReleaseStore, uri: str) -> ModelCard:
    from keel.models._promote import author_of

    version = models.resolve(_as_uri(uri))
    run = None
    if version.run_id is not None:
        try:
            found = models.tracking.get_run(version.run_id)
        except NotFound:
            found = None
        if found is not None:
            run = {
                "id": found.id, "project": found.project, "name": found.name,
                "status": str(found.status), "user": found.env.user,
                "params": dict(found.params), "metrics": dict(found.metrics),
                "started": _time.format_ms(found.start_ms),
            }  # fmt: skip
    return ModelCard(
        version=version,
        fields=releases.card_fields(version.name, version.version),
        author=author_of(models, version),
        run=run,
        datasets=tuple(_dataset(d.ref, d.digest) for d in version.datasets),
        evaluations=tuple(
            releases.list_evaluations(version.name, version.version)[:_MAX_EVALUATIONS]
        ),
        decisions=tuple(releases.list_decisions(version.name, version.version)[:_MAX_DECISIONS]),
        approvals=tuple(releases.list_approvals(version.name, version.version)),
    )


def _as_uri(text: str) -> str:
    """``churn/4`` and ``churn@champion`` as the registry's ``models:/`` URIs."""
    return text if text.startswith(("models:/", "runs:/")) else f"models:/{text}"


def _dataset(ref: str, digest: str | None) -> DatasetFacts:
    import keel.data

    try:
        version = keel.data.show(ref)
    except KeelError:  # deleted or never stored here: the card says so
        return DatasetFacts(ref=ref, digest=digest, found=False)
    columns = []
    for name, stats in list(version.profile.get("columns", {}).items())[:_MAX_PROFILE_COLUMNS]:
        if stats.get("kind") == "numeric":
            summary = ", ".join(
                f"{k} {_num(stats[k])}" for k in ("min", "mean", "max") if stats.get(k) is not None
            )
        elif stats.get("top"):
            summary = "top: " + ", ".join(f"{v} ({c})" for v, c in stats["top"][:3])
        else:
            summary = ""
        columns.append({
            "name": name, "type": stats.get("type", ""), "kind": stats.get("kind", ""),
            "nulls": _pct(stats.get("null_share")), "distinct": stats.get("distinct", ""),
            "summary": summary,
        })  # fmt: skip
    return DatasetFacts(
        ref=version.ref, digest=version.digest, found=True, rows=version.rows,
        size=version.size, columns=tuple(columns),
    )  # fmt: skip


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return f"{value:.4g}"


def _pct(value: Any) -> str:
    return "" if not isinstance(value, int | float) else f"{value:.1%}"


# -- rendering ----------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _md(value: Any) -> Any:
    """Every Markdown expression: HTML-escaped (no raw tags or entities get through) and
    Markdown link/code/table syntax backslash-escaped."""
    if value is None:
        return ""
    text = (
        value if isinstance(value, str) else _num(value) if isinstance(value, float) else str(value)
    )
    return _MD_SPECIAL.sub(r"\\\1", escape(text, quote=False))


def _environment(kind: str) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    if kind == "html":
        env = Environment(
            loader=FileSystemLoader(_TEMPLATES), autoescape=True, undefined=StrictUndefined
        )
    else:
        # Markdown is not HTML: every expression goes through _md (HTML and Markdown escaping).
        env = Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=False,  # noqa: S701
            finalize=_md,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
    env.filters["num"] = _num
    env.filters["when"] = _time.format_ms
    env.filters["mb"] = lambda n: f"{n / 1_000_000:.2f} MB"
    return env


def _context(card: ModelCard, *, charts: bool) -> dict[str, Any]:
    latest = card.evaluations[0] if card.evaluations else None
    plots: dict[str, Any] = {}
    if charts and latest is not None:
        from markupsafe import Markup

        # Generated by _card_svg, which escapes every label it draws.
        plots["metrics"] = Markup(_card_svg.bar_chart(  # noqa: S704
            f"Metrics on {latest.dataset}", list(latest.metrics.items())))  # fmt: skip
        if latest.confusion is not None:
            plots["confusion"] = Markup(_card_svg.confusion_heatmap(latest.confusion))  # noqa: S704
        if latest.calibration is not None:
            plots["calibration"] = Markup(_card_svg.reliability_plot(latest.calibration))  # noqa: S704
    fairness = [
        {"decision": d, "gate": g} for d in card.decisions for g in d.gates if g.kind == "fairness"
    ]
    return {
        "card": card,
        "v": card.version,
        "fields": {k: card.fields.get(k) for k in CARD_FIELDS},
        "field_titles": {
            "intended_use": "Intended use", "limitations": "Limitations",
            "ethical_considerations": "Ethical considerations", "owner": "Owner",
        },
        "latest": latest,
        "plots": plots,
        "fairness": fairness[:10],
        "generated": _time.format_ms(card.generated_ms),
    }  # fmt: skip


def render_markdown(card: ModelCard) -> str:
    return str(
        _environment("md").get_template("model_card.md.j2").render(**_context(card, charts=False))
    )


def render_html(card: ModelCard) -> str:
    return str(
        _environment("html")
        .get_template("model_card.html.j2")
        .render(**_context(card, charts=True))
    )


def write(card: ModelCard, out: Path, *, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``<name>-v<version>.md`` / ``.html`` into ``out`` (created). Everything is rendered
    before anything is written, and each file appears whole (temp file, fsync, rename) or not
    at all."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InvalidInput(f"formats are {' and '.join(FORMATS)}, got {list(formats)}",
                           field="format")  # fmt: skip
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} is a file; give a folder for the card", field="out")
    stem = f"{card.version.name}-v{card.version.version}"  # registry names: no path characters
    texts = {
        kind: render_markdown(card) if kind == "md" else render_html(card)
        for kind in dict.fromkeys(formats)
    }
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, text in texts.items():
        path = out / f"{stem}.{kind}"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(path)
    return written


def field_values(pairs: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """``["intended_use=Rank accounts", ...]`` (the CLI's ``--set``) as a mapping."""
    if isinstance(pairs, Mapping):
        return dict(pairs)
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in CARD_FIELDS:
            raise InvalidInput(
                f"expected FIELD=TEXT with FIELD one of {', '.join(CARD_FIELDS)}, got {pair!r}",
                field="set",
            )
        out[key.strip()] = value
    return out
