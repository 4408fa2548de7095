"""Inline SVG charts the monitoring report needs beyond the model cards' bars
(``keel.models._card_svg``, reused for the drift scores): a line chart over time, and a
reference-vs-current distribution (histogram or categories).

Drawn as text with the cards' own ``_text``/``_svg`` helpers, so every label is XML-escaped;
missing (None) or non-finite points are gaps, not zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from keel import _time
from keel.models._card_svg import _svg, _text

WIDTH = 560
_COLOURS = ("#3b6ea8", "#d9822b", "#2e8b57", "#b03a5b", "#6c5ba7", "#8a8a8a")
REFERENCE = "#9aa5b1"
CURRENT = "#3b6ea8"

Point = tuple[int, float | None]


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _short(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def _time_label(ms: int, span_ms: int) -> str:
    t = _time.to_datetime(ms)
    return f"{t:%m-%d %H:%M}" if span_ms < 3 * 86_400_000 else f"{t:%Y-%m-%d}"


def line_chart(title: str, series: Sequence[tuple[str, Sequence[Point]]]) -> str:
    """Lines over time, one per ``(name, [(epoch_ms, value | None), ...])``; a None value
    breaks the line. A single point is drawn as a dot."""
    legend_rows = max(1, -(-len(series) // 5))
    height, left, right, top = 206 + 14 * legend_rows, 56, 16, 26
    bottom = 26 + 14 * legend_rows
    points = [(x, y) for _, pts in series for x, y in pts if _finite(y)]
    body = [_text(4, 15, title, extra=' font-weight="bold"')]
    if not points:
        body.append(_text(left, top + 30, "no values yet"))
        return _svg(WIDTH, 90, title, body)
    xs = [x for x, _ in points]
    ys = [float(y) for _, y in points if y is not None]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, *ys), max(ys)
    if y1 <= y0:
        y1 = y0 + 1.0
    plot_w, plot_h = WIDTH - left - right, height - top - bottom

    def at(x: int, y: float) -> tuple[float, float]:
        px = left + (plot_w / 2 if x1 == x0 else (x - x0) / (x1 - x0) * plot_w)
        return px, top + plot_h - (y - y0) / (y1 - y0) * plot_h

    body.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        value = y0 + frac * (y1 - y0)
        _, py = at(x0, value)
        body.append(_text(left - 4, py + 4, _short(value), anchor="end"))
    span = x1 - x0
    body.append(_text(left, height - bottom + 14, _time_label(x0, span)))
    if x1 != x0:
        body.append(_text(left + plot_w, height - bottom + 14, _time_label(x1, span), anchor="end"))
    for i, (name, pts) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for x, y in sorted(pts, key=lambda p: p[0]):
            if not _finite(y):
                if segment:
                    segments.append(segment)
                segment = []
                continue
            px, py = at(x, float(y))  # type: ignore[arg-type]
            segment.append(f"{px:.1f},{py:.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                body.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            else:
                body.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                    'stroke-width="1.8"/>'
                )
        lx = left + (i % 5) * 100
        ly = height - bottom + 30 + (i // 5) * 14
        body.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(lx + 14, ly, name[:14]))
    return _svg(WIDTH, height, title, body)


def _pair_bars(
    title: str, labels: Sequence[str], reference: Sequence[int], current: Sequence[int]
) -> str:
    """Two bars per label (shares of each side's total), reference grey, current blue."""
    height, left, top, bottom = 200, 40, 26, 52
    ref_total, cur_total = sum(reference) or 1, sum(current) or 1
    ref_share = [c / ref_total for c in reference]
    cur_share = [c / cur_total for c in current]
    top_share = max([*ref_share, *cur_share, 0.01])
    plot_w, plot_h = WIDTH - left - 16, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    body = [_text(4, 15, title, extra=' font-weight="bold"')]
    body.append(_text(left - 4, top + 8, f"{top_share:.0%}", anchor="end"))
    for i, label in enumerate(labels):
        x = left + i * slot
        for j, (share, colour) in enumerate(((ref_share[i], REFERENCE), (cur_share[i], CURRENT))):
            h = share / top_share * plot_h
            body.append(
                f'<rect x="{x + 1 + j * (slot - 2) / 2:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{max((slot - 2) / 2, 0.5):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}: {share:.1%}</title></rect>"
            )
        if len(labels) <= 13 or i % max(len(labels) // 6, 1) == 0:
            body.append(_text(x + slot / 2, top + plot_h + 14, label[:12], anchor="middle"))
    ly = height - 8
    body.append(f'<rect x="{left}" y="{ly - 9}" width="10" height="10" fill="{REFERENCE}"/>')
    body.append(_text(left + 14, ly, f"reference (n={sum(reference)})"))
    body.append(f'<rect x="{left + 200}" y="{ly - 9}" width="10" height="10" fill="{CURRENT}"/>')
    body.append(_text(left + 214, ly, f"current (n={sum(current)})"))
    return _svg(WIDTH, height, title, body)


def histogram_pair(
    title: str,
    edges: Sequence[float],
    reference: Sequence[int],
    current: Sequence[int],
    *,
    reference_outside: Sequence[int] = (0, 0),
    current_outside: Sequence[int] = (0, 0),
) -> str:
    """A numeric column's bins, reference beside current; values outside the reference's
    range are shown as the first (below) and last (above) bars."""
    labels = ["< min", *(_short(e) for e in edges[:-1]), "> max"]
    ref = [reference_outside[0], *reference, reference_outside[1]]
    cur = [current_outside[0], *current, current_outside[1]]
    return _pair_bars(title, labels, ref, cur)


def categories_pair(
    title: str,
    categories: Sequence[str],
    reference: Sequence[int],
    current: Sequence[int],
    *,
    reference_other: int = 0,
    current_other: int = 0,
) -> str:
    """A categorical column's most frequent reference categories, plus ``(other)``."""
    return _pair_bars(
        title,
        [*categories, "(other)"],
        [*reference, reference_other],
        [*current, current_other],
    )
