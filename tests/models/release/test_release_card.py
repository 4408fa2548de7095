"""Model cards hold the stored facts, escape whatever people wrote (no markup injection into the
HTML page or the Markdown file), draw well-formed SVG, and are written atomically."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from release_world import World, register

import keel.models
from keel.errors import InvalidInput, NotFound
from keel.models._card import field_values, render_html, render_markdown
from keel.models._card_svg import bar_chart, confusion_heatmap, reliability_plot
from keel.models._metrics import Calibration, ConfusionMatrix

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> [click](javascript:alert(1))'


@pytest.fixture
def released(world: World) -> int:
    v = register(world, ["a", "b"], author="alice")
    keel.models.evaluate(f"churn/{v}", world.ref, "churned", slices=["region"])
    keel.models.approve("churn", v, user="bob", comment="checked the slices")
    gates = {
        "dataset": world.ref, "target": "churned",
        "champion": {"metrics": {"roc_auc": ">= 0.8"}, "approvals": 1,
                     "fairness": [{"sensitive": "sex", "max": 0.5}]},
    }  # fmt: skip
    assert keel.models.promote("churn", v, gates=gates, actor="carol").moved
    keel.models.set_card("churn", v, intended_use="Rank accounts for retention calls.")
    return v


def test_card_contains_the_stored_facts(world: World, released: int) -> None:
    card = keel.models.card(f"churn/{released}")
    evaluation = keel.models.evaluations("churn", released)[0]
    for text in (render_markdown(card), render_html(card)):
        assert "Rank accounts for retention calls." in text
        assert world.ref in text and "600 rows" in text  # training data and its profile
        assert f"{evaluation.metrics['roc_auc']:.4g}" in text
        assert "north" in text  # per-slice results
        assert "demographic" in text and "across sex" in text  # fairness
        assert "promote to" in text and "carol" in text and "passed" in text  # decision
        assert "bob" in text and "checked the slices" in text  # approval
        assert "alice" in text  # author
        assert card.run is not None and card.run["id"] in text  # lineage
        assert "float64" in text  # signature
        assert "scikit" in text  # environment
    html = render_html(card)
    assert html.count("<svg") == 3  # metrics bars, confusion matrix, reliability curve


def test_html_and_markdown_escape_what_people_wrote(world: World, released: int) -> None:
    keel.models.set_card("churn", released, limitations=EVIL)
    keel.models.set_description("churn", EVIL, version=released)
    card = keel.models.card(f"churn/{released}")
    html = render_html(card)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # The page can load nothing and run nothing even if something slipped through.
    assert "default-src 'none'" in html and "<script" not in html
    markdown = render_markdown(card)
    assert "<script" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;" in markdown
    assert not re.search(r"(?<!\\)\]\(javascript", markdown)  # no live link syntax
    assert "\\[click\\]" in markdown


def test_cards_are_written_as_files_and_regenerated(
    world: World, released: int, tmp_path: Path
) -> None:
    out = tmp_path / "cards"
    written = keel.models.write_card(f"churn/{released}", out)
    assert [p.name for p in written] == [f"churn-v{released}.md", f"churn-v{released}.html"]
    assert not list(out.glob(".*tmp"))
    keel.models.set_card("churn", released, owner="growth-team")
    (html,) = keel.models.write_card("churn@champion", out, formats=["html"])
    assert "growth-team" in html.read_text()  # from the store, not copied
    with pytest.raises(InvalidInput) as info:
        keel.models.write_card(f"churn/{released}", out, formats=["pdf"])
    assert info.value.field == "format"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InvalidInput) as info:
        keel.models.write_card(f"churn/{released}", blocker)
    assert info.value.field == "out" and blocker.read_text() == "not a folder"
    with pytest.raises(NotFound):
        keel.models.card("churn/99")
    with pytest.raises(NotFound):
        keel.models.set_card("churn", 99, owner="x")


def test_card_fields_are_checked() -> None:
    assert field_values(["intended_use=a=b", "owner="]) == {"intended_use": "a=b", "owner": ""}
    with pytest.raises(InvalidInput) as info:
        field_values(["secret=1"])
    assert info.value.field == "set"


def test_svg_charts_are_well_formed_and_escape_labels() -> None:
    charts = [
        bar_chart("m <&>", [("roc_auc", 0.9), ("<b>", 0.5), ("nan", float("nan"))]),
        bar_chart("negative", [("r2", -0.3), ("mae", 12.5)]),
        bar_chart("empty", []),
        confusion_heatmap(ConfusionMatrix(("<script>", "b"), ((5, 1), (0, 7)))),
        reliability_plot(Calibration((0.1, 0.5, 0.9), (0.2, 0.5, 0.8), (10, 5, 10), 0.1, 0.05)),
    ]
    for svg in charts:
        root = ET.fromstring(svg)  # parses: well-formed XML
        assert root.tag.endswith("svg")
        assert "<script" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in charts[3]
    assert len(re.findall("<rect", charts[3])) == 4
