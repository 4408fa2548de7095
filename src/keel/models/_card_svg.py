"""Small inline SVG charts for model cards: bars, a reliability curve, a confusion heat map.

Drawn as text (no plotting library); every label goes through XML escaping, so a class named
``<script>`` is drawn, not run. Numbers are formatted here; non-finite values are not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from keel.models._metrics import Calibration, ConfusionMatrix

_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_BAR = "#3b6ea8"
_WIDTH = 520


def _text(x: float, y: float, content: str, *, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {_FONT}{extra}>'
        f"{escape(content)}</text>"
    )


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _short(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"


def bar_chart(title: str, items: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars, one per (label, value); the scale starts at 0 (or the minimum when
    negative values are present) and ends at the largest value (at least 1 for scores)."""
    shown = [(label, v) for label, v in items if math.isfinite(v)]
    row, label_w, top = 22, 170, 24
    height = top + row * max(len(shown), 1) + 10
    low = min([0.0, *(v for _, v in shown)])
    high = max([1.0 if all(0 <= v <= 1 for _, v in shown) else 0.0, *(v for _, v in shown)])
    span = (high - low) or 1.0
    plot_w = _WIDTH - label_w - 70
    body = [_text(4, 15, title, extra=' font-weight="bold"')]
    for i, (label, value) in enumerate(shown):
        y = top + i * row
        x0 = label_w + (0 - low) / span * plot_w
        x1 = label_w + (value - low) / span * plot_w
        body.append(_text(label_w - 6, y + 14, label[:28], anchor="end"))
        body.append(
            f'<rect x="{min(x0, x1):.1f}" y="{y + 3}" width="{abs(x1 - x0):.1f}" height="{row - 6}"'
            f' fill="{_BAR}"/>'
        )
        body.append(_text(max(x0, x1) + 4, y + 14, _short(value)))
    if not shown:
        body.append(_text(label_w, top + 14, "no values"))
    return _svg(_WIDTH, height, title, body)


def reliability_plot(calibration: Calibration, *, title: str = "Reliability curve") -> str:
    """Observed rate against mean predicted probability per bin, with the diagonal of perfect
    calibration; point area grows with the bin's rows."""
    size, pad = 260, 36
    inner = size - 2 * pad

    def at(p: float, q: float) -> tuple[float, float]:
        return pad + p * inner, size - pad - q * inner

    body = [_text(4, 15, title, extra=' font-weight="bold"')]
    x0, y0 = at(0, 0)
    x1, y1 = at(1, 1)
    body.append(
        f'<rect x="{x0:.1f}" y="{y1:.1f}" width="{inner}" height="{inner}" fill="none" '
        'stroke="#999"/>'
    )
    body.append(
        f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#bbb" '
        'stroke-dasharray="4 3"/>'
    )
    points = [
        at(p, q)
        for p, q in zip(calibration.mean_predicted, calibration.observed, strict=True)
        if math.isfinite(p) and math.isfinite(q)
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{_BAR}" stroke-width="2"/>')
    total = max(sum(calibration.counts), 1)
    for (x, y), count in zip(points, calibration.counts, strict=False):
        radius = 2.5 + 6 * math.sqrt(count / total)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{_BAR}"/>')
    body.append(_text(size / 2, size - 6, "mean predicted probability", anchor="middle"))
    body.append(
        _text(12, size / 2, "observed rate", anchor="middle",
              extra=f' transform="rotate(-90 12 {size / 2:.1f})"')
    )  # fmt: skip
    for tick in (0.0, 0.5, 1.0):
        tx, ty = at(tick, 0)
        body.append(_text(tx, ty + 13, f"{tick:g}", anchor="middle"))
        lx, ly = at(0, tick)
        body.append(_text(lx - 4, ly + 4, f"{tick:g}", anchor="end"))
    caption = f"Brier {calibration.brier:.4f} · ECE {calibration.ece:.4f}"
    body.append(_text(size - pad, pad - 6, caption, anchor="end"))
    return _svg(size, size, title, body)


def confusion_heatmap(matrix: ConfusionMatrix, *, title: str = "Confusion matrix") -> str:
    """Cells shaded by their share of the true class's rows, labelled with the count."""
    labels = matrix.labels[:20]  # a card is not the place for a 100-class matrix
    n = len(labels)
    cell, left, top = (44 if n <= 6 else 26), 110, 46
    width, height = left + cell * n + 12, top + cell * n + 30
    body = [_text(4, 15, title, extra=' font-weight="bold"')]
    body.append(_text(left + cell * n / 2, 34, "predicted", anchor="middle"))
    for i, true_label in enumerate(labels):
        row = matrix.counts[i][:n]
        row_total = max(sum(matrix.counts[i]), 1)
        y = top + i * cell
        body.append(_text(left - 6, y + cell / 2 + 4, true_label[:16], anchor="end"))
        for j, count in enumerate(row):
            x = left + j * cell
            share = count / row_total
            light = round(255 - share * 180)
            fill = f"rgb({light},{light + (255 - light) // 3},255)"
            ink = "#fff" if share > 0.6 else "#111"
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                'stroke="#fff"/>'
            )
            body.append(
                _text(x + cell / 2, y + cell / 2 + 4, str(count), anchor="middle",
                      extra=f' fill="{ink}"')
            )  # fmt: skip
    for j, label in enumerate(labels):
        body.append(_text(left + j * cell + cell / 2, top + n * cell + 14, label[:8],
                          anchor="middle"))  # fmt: skip
    body.append(_text(left - 6, top - 4, "true ↓", anchor="end"))
    return _svg(width, height, title, body)
