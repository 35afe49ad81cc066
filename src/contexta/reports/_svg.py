"""Inline SVG line charts for the HTML report: axes with nice ticks, one line per series, a legend.

The chart is drawn in a fixed coordinate space (a `viewBox`) and scaled by the page, so the markup is
the same on every screen and the same document always gives the same string. Every number written
into an attribute is formatted here from floats; captured text (titles, labels) only ever appears
escaped (`_escaping.html_text`), as element text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from contexta.reports._escaping import html_text
from contexta.reports._sections import ReportChart

__all__ = ["MAX_POINTS_PER_SERIES", "PALETTE", "nice_ticks", "render_line_chart", "thin_points"]

Point = tuple[float, float]

# Okabe & Ito's colour-blind-safe palette, without its yellow (too faint on white). Past seven series
# the colours repeat with a dash pattern, so lines stay distinguishable.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
_DASHES = ("", "7 4", "2 3")

MAX_POINTS_PER_SERIES = 2000
"""More points than this cannot be told apart at report width; they only make the page heavy."""

_MARKER_LIMIT = 24  # a sparse line gets a dot on each point, so single readings are not lost in it

_WIDTH = 860.0
_PLOT_HEIGHT = 300.0
_TOP = 14.0
_CHAR_WIDTH = 7.0  # a generous average glyph width at the 12px tick font, used to lay out text
_LEGEND_ROW = 22.0
_LEGEND_LABEL_CHARS = 48
_LARGEST_DRAWABLE = 1e300  # NaN fails this too; so do spans float arithmetic cannot hold
_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@dataclass(frozen=True, slots=True)
class _Axis:
    """A value range mapped onto a pixel range, with the tick values drawn along it."""

    low: float
    high: float
    ticks: tuple[float, ...]
    start: float
    end: float

    def position(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def render_line_chart(chart: ReportChart) -> str:
    """An inline `<svg>` line chart of `chart`, or a short "no data" paragraph when it has no point
    that can be drawn. A NaN or infinite reading is a gap: the line stops before it and starts again
    after it, and it takes no part in the axes' range."""
    lines = [(series.label, _segments(series.points)) for series in chart.series]
    points = [point for _, segments in lines for segment in segments for point in segment]
    if not points:
        return '<p class="no-data">No data to draw.</p>'
    x_ticks = nice_ticks(min(x for x, _ in points), max(x for x, _ in points))
    y_ticks = nice_ticks(min(y for _, y in points), max(y for _, y in points))
    y_labels = [_tick_label(tick, y_ticks) for tick in y_ticks]
    x_labels = [_tick_label(tick, x_ticks) for tick in x_ticks]

    plot_left = 30.0 + max(len(label) for label in y_labels) * _CHAR_WIDTH
    plot_right = _WIDTH - max(16.0, len(x_labels[-1]) * _CHAR_WIDTH / 2 + 6.0)
    plot_bottom = _TOP + _PLOT_HEIGHT
    x_axis = _Axis(x_ticks[0], x_ticks[-1], x_ticks, plot_left, plot_right)
    y_axis = _Axis(y_ticks[0], y_ticks[-1], y_ticks, plot_bottom, _TOP)

    legend, legend_rows = _legend([label for label, _ in lines], plot_left, plot_right, plot_bottom + 62.0)
    height = plot_bottom + 62.0 + legend_rows * _LEGEND_ROW

    title = html_text(f"{chart.title}: {chart.y_label} by {chart.x_label}")
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_number(_WIDTH)} {_number(height)}" '
        f'width="{_number(_WIDTH)}" height="{_number(height)}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12">',
        f"<title>{title}</title>",
        _grid(x_axis, y_axis),
        _tick_labels(x_axis, y_axis, x_labels, y_labels),
        _axis_titles(chart, x_axis, y_axis),
    ]
    parts += [
        _series(index, segments, x_axis, y_axis) for index, (_, segments) in enumerate(lines) if segments
    ]
    parts += [legend, "</svg>"]
    return "\n".join(parts)


def nice_ticks(low: float, high: float) -> tuple[float, ...]:
    """Four to six evenly spaced round values (steps of 1, 2 or 5 times a power of ten) whose first
    and last enclose `low`..`high`; a range of one value is widened a little so it still has an axis."""
    if high - low <= max(abs(high + low) * 1e-9, 1e-300):  # one value, or a span floats cannot divide
        pad = abs(low) * 0.1 if abs(low) > 1e-290 else 1.0
        low, high = low - pad, high + pad
    magnitude = 10.0 ** math.floor(math.log10(high - low))
    # 2.5 is only a fallback: a few spans have no 1-2-5 step that gives four to six ticks.
    candidates = [
        mantissa * magnitude * 10.0**exponent
        for mantissas in ((1.0, 2.0, 5.0), (2.5,))
        for exponent in (-2, -1, 0, 1)
        for mantissa in mantissas
    ]
    best: tuple[int, int, float] | None = None
    for step in candidates:
        first = math.floor(low / step + 1e-9)
        last = math.ceil(high / step - 1e-9)
        count = last - first + 1
        if 4 <= count <= 6:
            return tuple(_tick_value(index * step) for index in range(first, last + 1))
        if best is None or abs(count - 5) < abs(best[1] - best[0] + 1 - 5):
            best = (first, last, step)
    assert best is not None
    first, last, step = best
    return tuple(_tick_value(index * step) for index in range(first, last + 1))


def thin_points(points: Sequence[Point], limit: int = MAX_POINTS_PER_SERIES) -> tuple[Point, ...]:
    """At most `limit` of `points`, in their order: the first point of each equal bucket, the lowest
    and the highest point of the bucket (so a spike stays visible), and the last point."""
    if len(points) <= limit:
        return tuple(points)
    bucket_count = max(1, (limit - 1) // 3)
    size = math.ceil(len(points) / bucket_count)
    kept: list[int] = []
    for start in range(0, len(points), size):
        bucket = range(start, min(start + size, len(points)))
        lowest = min(bucket, key=lambda index: points[index][1])
        highest = max(bucket, key=lambda index: points[index][1])
        kept += sorted({start, lowest, highest})
    if kept[-1] != len(points) - 1:
        kept.append(len(points) - 1)
    return tuple(points[index] for index in kept)


def _segments(points: Sequence[Point]) -> list[tuple[Point, ...]]:
    """The runs of points a line can be drawn through, split where a point cannot be drawn (NaN, an
    infinity, or a value whose span would overflow a float), so the gap shows; thinned to what the
    page can show, each run in proportion to its length."""
    runs: list[list[Point]] = [[]]
    for x, y in points:
        if abs(x) <= _LARGEST_DRAWABLE and abs(y) <= _LARGEST_DRAWABLE:  # False for NaN too
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    if not runs[-1]:
        runs.pop()
    total = sum(map(len, runs))
    if total <= MAX_POINTS_PER_SERIES:
        return [tuple(run) for run in runs]
    return [thin_points(run, max(1, MAX_POINTS_PER_SERIES * len(run) // total)) for run in runs]


def _grid(x_axis: _Axis, y_axis: _Axis) -> str:
    """Light lines at the ticks, a darker one at zero when the values cross it, and the two axes."""
    left, right, bottom, top = (
        _number(edge) for edge in (x_axis.start, x_axis.end, y_axis.start, y_axis.end)
    )
    parts = ['<g class="grid" stroke="#e3e6ea" stroke-width="1">']
    for tick in y_axis.ticks[1:]:
        y = _number(y_axis.position(tick))
        parts.append(f'<line x1="{left}" y1="{y}" x2="{right}" y2="{y}"/>')
    for tick in x_axis.ticks[1:]:
        x = _number(x_axis.position(tick))
        parts.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/>')
    parts.append("</g>")
    if y_axis.low < 0 < y_axis.high:
        zero = _number(y_axis.position(0.0))
        parts.append(
            f'<line class="zero" x1="{left}" y1="{zero}" x2="{right}" y2="{zero}" '
            'stroke="#9aa1a9" stroke-width="1"/>'
        )
    parts.append(f'<path class="axes" d="M{left} {top}V{bottom}H{right}" fill="none" stroke="#6b7280"/>')
    return "\n".join(parts)


def _tick_labels(x_axis: _Axis, y_axis: _Axis, x_labels: list[str], y_labels: list[str]) -> str:
    """The tick values: right-aligned left of the y axis, centred under the x axis."""
    parts = ['<g class="ticks" fill="#4b5563">']
    for tick, label in zip(y_axis.ticks, y_labels, strict=True):
        parts.append(
            f'<text x="{_number(x_axis.start - 8)}" y="{_number(y_axis.position(tick) + 4)}" '
            f'text-anchor="end">{label}</text>'
        )
    for tick, label in zip(x_axis.ticks, x_labels, strict=True):
        parts.append(
            f'<text x="{_number(x_axis.position(tick))}" y="{_number(y_axis.start + 18)}" '
            f'text-anchor="middle">{label}</text>'
        )
    parts.append("</g>")
    return "\n".join(parts)


def _axis_titles(chart: ReportChart, x_axis: _Axis, y_axis: _Axis) -> str:
    middle_x = _number((x_axis.start + x_axis.end) / 2)
    middle_y = _number((y_axis.start + y_axis.end) / 2)
    return (
        f'<g class="axis-labels" fill="#1f2328" font-size="13">'
        f'<text x="{middle_x}" y="{_number(y_axis.start + 40)}" text-anchor="middle">'
        f"{html_text(chart.x_label)}</text>"
        f'<text transform="translate(14 {middle_y}) rotate(-90)" text-anchor="middle">'
        f"{html_text(chart.y_label)}</text></g>"
    )


def _series(index: int, segments: Sequence[Sequence[Point]], x_axis: _Axis, y_axis: _Axis) -> str:
    """One series: a polyline per run of drawable points (a lone point between gaps is a dot)."""
    colour, dash = _style(index)
    dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
    markers = sum(map(len, segments)) <= _MARKER_LIMIT
    parts = []
    for segment in segments:
        pixels = [(_number(x_axis.position(x)), _number(y_axis.position(y))) for x, y in segment]
        if len(pixels) == 1:
            x, y = pixels[0]
            parts.append(f'<circle class="series" cx="{x}" cy="{y}" r="4" fill="{colour}"/>')
            continue
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-linejoin="round" stroke-linecap="round"{dash_attribute} '
            f'points="{" ".join(f"{x},{y}" for x, y in pixels)}"/>'
        )
        if markers:
            parts += [f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>' for x, y in pixels]
    return "\n".join(parts)


def _legend(labels: Sequence[str], left: float, right: float, top: float) -> tuple[str, int]:
    """The legend laid out in rows below the plot (never over the lines), and how many rows it takes."""
    parts = ['<g class="legend" fill="#1f2328">']
    x, row = left, 0
    for index, label in enumerate(labels):
        shown = label if len(label) <= _LEGEND_LABEL_CHARS else label[: _LEGEND_LABEL_CHARS - 1] + "…"
        width = 30.0 + len(shown) * _CHAR_WIDTH
        if x > left and x + width > right:
            x, row = left, row + 1
        y = top + row * _LEGEND_ROW
        colour, dash = _style(index)
        dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f"<g><title>{html_text(label)}</title>"
            f'<line x1="{_number(x)}" y1="{_number(y - 4)}" x2="{_number(x + 22)}" y2="{_number(y - 4)}" '
            f'stroke="{colour}" stroke-width="3"{dash_attribute}/>'
            f'<text x="{_number(x + 28)}" y="{_number(y)}">{html_text(shown)}</text></g>'
        )
        x += width + 18.0
    parts.append("</g>")
    return "\n".join(parts), row + 1


def _style(index: int) -> tuple[str, str]:
    return PALETTE[index % len(PALETTE)], _DASHES[(index // len(PALETTE)) % len(_DASHES)]


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    """`value` with as many decimals as the tick step needs; large values shortened with k, M, G, T."""
    step = ticks[1] - ticks[0]
    largest = max(abs(tick) for tick in ticks)
    if largest >= 1e4:
        unit, suffix = next((unit, suffix) for unit, suffix in _UNITS if largest >= unit)
        if value == 0:
            return "0"
        if step / unit >= 1e-3:  # otherwise a narrow window far from zero: every digit is needed
            return f"{value / unit:.{_decimals(step / unit)}f}{suffix}"
    if step < 1e-4:
        return "0" if value == 0 else f"{value:.3g}"
    return f"{value:.{_decimals(step)}f}"


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if _is_quarter(step) else 0)


def _is_quarter(step: float) -> bool:
    """A 2.5 step (0.25, 25, ...) needs one more decimal than its power of ten gives."""
    mantissa = step / 10.0 ** math.floor(math.log10(step) + 1e-9)
    return abs(mantissa - 2.5) < 1e-6 and step < 10


def _tick_value(value: float) -> float:
    """`value` without float noise (0.6000000000000001) or a negative zero."""
    return float(f"{value:.12g}") + 0.0


def _number(value: float) -> str:
    """A coordinate for an attribute: one decimal is a tenth of a pixel at report width."""
    return f"{value + 0.0:.1f}"
