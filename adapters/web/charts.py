"""Charts as geometry: bars and points computed here, drawn as SVG by the templates.

No SVG text is built in Python, so nothing is ever marked safe: the template
(``charts.html``) writes the numbers and labels computed here through autoescaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bar", "Chart", "bar_chart", "histogram"]

WIDTH, HEIGHT = 640, 220
LEFT, BOTTOM, TOP = 44, 34, 14


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # under the bar (may be empty: only some bars are labelled)
    title: str  # the tooltip: the exact figure


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]  # (y, label) of the horizontal grid lines
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    empty: bool = False


def _ticks(top: float, as_percent: bool, height: int) -> tuple[tuple[float, str], ...]:
    plot = height - BOTTOM - TOP
    out = []
    for i in range(5):
        value = top * i / 4
        y = height - BOTTOM - plot * i / 4
        text = (
            f"{value * 100:.0f}%" if as_percent else f"{value:g}" if value < 10 else f"{value:.0f}"
        )
        out.append((round(y, 1), text))
    return tuple(out)


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    titles: Sequence[str],
    *,
    top: float | None = None,
    as_percent: bool = False,
    label_every: int = 1,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """One bar per value, scaled to ``top`` (default: the largest value, rounded up)."""
    if not values:
        return Chart(
            (), _ticks(1.0, as_percent, height), width, height, LEFT, height - BOTTOM, True
        )
    highest = max(values)
    if top is None:
        top = _nice(highest)
    plot_w = width - LEFT - 8
    plot_h = height - BOTTOM - TOP
    step = plot_w / len(values)
    gap = min(6.0, step * 0.2)
    bars = []
    for i, (value, label, title) in enumerate(zip(values, labels, titles, strict=True)):
        h = 0.0 if top <= 0 else plot_h * min(value, top) / top
        bars.append(
            Bar(
                x=round(LEFT + i * step + gap / 2, 1),
                y=round(height - BOTTOM - h, 1),
                width=round(max(step - gap, 1.0), 1),
                height=round(h, 1),
                label=label if i % label_every == 0 else "",
                title=title,
            )
        )
    return Chart(tuple(bars), _ticks(top, as_percent, height), width, height, LEFT, height - BOTTOM)


def _nice(value: float) -> float:
    """The next "round" number at or above ``value`` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * power:
            return float(factor * power)
    return float(10 * power)


def histogram(
    values: Sequence[float], bins: int, low: float, high: float, unit: str = ""
) -> tuple[list[int], list[str]]:
    """Counts of ``values`` in ``bins`` equal bins from ``low`` to ``high`` (the last bin
    takes everything above), and each bin's label."""
    counts = [0] * bins
    width = (high - low) / bins
    for value in values:
        index = int((value - low) / width) if width > 0 else 0
        counts[min(max(index, 0), bins - 1)] += 1
    labels = [f"{low + i * width:g}{unit}" for i in range(bins)]
    return counts, labels
