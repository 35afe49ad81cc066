"""A hand-written SVG: per-call p50 and p99 of each tool as horizontal bars on a log scale.

Written by hand so the harness needs no plotting library; a log scale because the tools span four
orders of magnitude, from a deque append to a synchronous database write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

WIDTH = 980
LABEL_WIDTH = 330
PLOT_LEFT = LABEL_WIDTH + 10
PLOT_RIGHT = WIDTH - 90  # room for the value printed after the longest bar
TOP = 70
ROW_HEIGHT = 38
BAR_HEIGHT = 13
P50_COLOUR = "#2f6db5"
P99_COLOUR = "#9cc0e8"


def decade_label(exponent: int) -> str:
    """10**exponent microseconds, written the way a person would say it."""
    micros = 10.0**exponent
    if micros >= 1000:
        return f"{micros / 1000:g} ms"
    return f"{micros:g} µs"


def value_label(micros: float) -> str:
    if micros >= 1000:
        return f"{micros / 1000:.3g} ms"
    return f"{micros:.3g} µs"


def render(rows: Sequence[dict[str, Any]], title: str) -> str:
    """The chart for every measured row (rows without timings are listed as not measured)."""
    measured = [row for row in rows if row["per_call_us"]["p50"] is not None]
    skipped = [row for row in rows if row["per_call_us"]["p50"] is None]
    values = [row["per_call_us"][stat] for row in measured for stat in ("p50", "p99")]
    low = math.floor(math.log10(min(values))) if values else -1
    high = math.ceil(math.log10(max(values))) if values else 1
    high = max(high, low + 1)

    def x(micros: float) -> float:
        share = (math.log10(max(micros, 10.0**low)) - low) / (high - low)
        return PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT)

    plot_bottom = TOP + ROW_HEIGHT * len(measured)
    height = plot_bottom + 50 + 18 * len(skipped)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<rect x="{PLOT_LEFT}" y="36" width="12" height="12" fill="{P50_COLOUR}"/>'
        f'<text x="{PLOT_LEFT + 18}" y="46">p50</text>',
        f'<rect x="{PLOT_LEFT + 60}" y="36" width="12" height="12" fill="{P99_COLOUR}"/>'
        f'<text x="{PLOT_LEFT + 78}" y="46">p99 (per call, log scale)</text>',
    ]
    for exponent in range(low, high + 1):
        gx = x(10.0**exponent)
        parts.append(
            f'<line x1="{gx:.1f}" y1="{TOP - 6}" x2="{gx:.1f}" y2="{plot_bottom}" stroke="#ddd"/>'
            f'<text x="{gx:.1f}" y="{plot_bottom + 16}" text-anchor="middle" fill="#444">'
            f"{escape(decade_label(exponent))}</text>"
        )
    for index, row in enumerate(measured):
        y = TOP + index * ROW_HEIGHT
        label = row["label"].replace("`", "")
        parts.append(
            f'<text x="{LABEL_WIDTH}" y="{y + BAR_HEIGHT + 4}" text-anchor="end">{escape(label)}</text>'
        )
        for offset, stat, colour in ((0, "p50", P50_COLOUR), (BAR_HEIGHT + 2, "p99", P99_COLOUR)):
            micros = row["per_call_us"][stat]
            end = x(micros)
            parts.append(
                f'<rect x="{PLOT_LEFT}" y="{y + offset}" width="{max(end - PLOT_LEFT, 1):.1f}" '
                f'height="{BAR_HEIGHT}" fill="{colour}"><title>{escape(label)} {stat}: '
                f"{escape(value_label(micros))}</title></rect>"
                f'<text x="{end + 4:.1f}" y="{y + offset + BAR_HEIGHT - 2}" font-size="11" fill="#333">'
                f"{escape(value_label(micros))}</text>"
            )
    parts.append(f'<line x1="{PLOT_LEFT}" y1="{TOP - 6}" x2="{PLOT_LEFT}" y2="{plot_bottom}" stroke="#888"/>')
    for index, row in enumerate(skipped):
        label = row["label"].replace("`", "")
        parts.append(
            f'<text x="{PLOT_LEFT}" y="{plot_bottom + 40 + 18 * index}" fill="#a33">'
            f"{escape(label)}: {escape(row['status'])}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
