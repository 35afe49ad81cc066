"""The HTML rendering of report documents: one self-contained page whose captured text is escaped,
whose tables read like the Markdown ones, and whose charts are inline SVG a browser really draws."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from contexta.reports import ChartSeries, ReportChart, ReportDocument, ReportSection, ReportTable

HOSTILE = '<script>alert(1)</script> <img src=x onerror=alert(1)> " onload="x \' & done'
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class RenderedPage(HTMLParser):
    """A rendered page read back the way a browser's parser sees it: its elements with their
    attributes, the text inside each one, and any tag closed out of order."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[tuple[str, dict[str, str], str]] = []  # (tag, attributes, text) per element
        self.errors: list[str] = []
        self._open: list[tuple[str, dict[str, str], list[str]]] = []
        self.feed(page)
        self.close()
        self.errors += [f"<{tag}> is never closed" for tag, _, _ in self._open]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, attributes, []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self._open[-1][0] if self._open else 'nothing'}")
            return
        _, attributes, text = self._open.pop()
        self.texts.append((tag, attributes, "".join(text)))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    def text_of(self, tag: str) -> list[str]:
        """The text of every `tag` element, in the order they close (document order for leaves)."""
        return [text for name, _, text in self.texts if name == tag]

    def all_of(self, tag: str) -> list[dict[str, str]]:
        return [attributes for name, attributes in self.elements if name == tag]

    def polylines(self) -> list[list[tuple[float, float]]]:
        """Each drawn line's points, in pixels."""
        return [
            [(float(x), float(y)) for x, y in (pair.split(",") for pair in line["points"].split())]
            for line in self.all_of("polyline")
        ]

    def tick_labels(self, anchor: str) -> list[float]:
        """The axis numbers: y ticks are anchored at their end, x ticks in their middle."""
        return [
            _axis_number(text)
            for name, attributes, text in self.texts
            if name == "text" and attributes.get("text-anchor") == anchor and _is_axis_number(text)
        ]


def _is_axis_number(text: str) -> bool:
    try:
        _axis_number(text)
    except ValueError:
        return False
    return True


def _axis_number(text: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if text and text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text)


def _read(document: ReportDocument) -> tuple[str, RenderedPage]:
    page = document.to_html()
    parsed = RenderedPage(page)
    assert parsed.errors == []
    return page, parsed


def _chart_document(*charts: ReportChart) -> ReportDocument:
    return ReportDocument("Charts", [ReportSection("Curves", charts=charts)])


def _training_report() -> ReportDocument:
    summary = ReportTable(
        ["metric", "value", "epoch"],
        [("accuracy", 0.8312345678, 12), ("converged", True, 12), ("notes", None, None)],
    )
    loss = ReportChart(
        "Training loss",
        "step",
        "loss",
        [
            ChartSeries("train.loss", [(step, 2.0 * math.exp(-step / 40)) for step in range(0, 201, 2)]),
            ChartSeries(
                "eval.loss", [(step, 2.2 * math.exp(-step / 50) + 0.1) for step in range(0, 201, 20)]
            ),
            ChartSeries("lr", [(step, 0.5 - step / 1000) for step in range(0, 121, 10)]),
        ],
    )
    return ReportDocument(
        "Run Snapshot: run:vision.baseline",
        [
            ReportSection("Run Summary", ["The baseline run, trained for 12 epochs."], summary),
            ReportSection("Training", ["Loss fell steadily."], charts=[loss]),
            ReportSection("Completeness Notes", ["Nothing is missing."]),
        ],
    )


# -- the page ----------------------------------------------------------------------------------------


def test_a_report_page_has_its_title_sections_table_and_chart() -> None:
    page, parsed = _read(_training_report())

    assert page.startswith("<!DOCTYPE html>\n")
    assert {"charset": "utf-8"} in parsed.all_of("meta")
    assert parsed.text_of("h1") == ["Run Snapshot: run:vision.baseline"]
    assert len(parsed.all_of("section")) == 3
    assert parsed.text_of("h2") == ["Run Summary", "Training", "Completeness Notes"]
    assert parsed.text_of("p") == [
        "The baseline run, trained for 12 epochs.",
        "Loss fell steadily.",
        "Nothing is missing.",
    ]
    assert len(parsed.all_of("thead")) == len(parsed.all_of("tbody")) == 1
    assert parsed.text_of("th") == ["metric", "value", "epoch"]
    # cells read exactly as in the Markdown rendering
    assert parsed.text_of("td") == ["accuracy", "0.831235", "12", "converged", "yes", "12", "notes", "-", "-"]
    assert "| accuracy | 0.831235 | 12 |" in _training_report().to_markdown()

    (svg,) = parsed.all_of("svg")
    assert svg["viewbox"].startswith("0 0 ")
    page_title, chart_title, *legend_titles = parsed.text_of("title")
    assert page_title == "Run Snapshot: run:vision.baseline"
    assert chart_title == "Training loss: loss by step"  # what a screen reader announces
    assert legend_titles == ["train.loss", "eval.loss", "lr"]
    lines = parsed.polylines()
    assert [len(points) for points in lines] == [101, 11, 13]
    colours = [line["stroke"] for line in parsed.all_of("polyline")]
    assert len(set(colours)) == 3
    assert {"train.loss", "eval.loss", "lr", "step", "loss"} <= set(parsed.text_of("text"))


def test_the_chart_is_drawn_after_the_table_and_numbers_are_right_aligned() -> None:
    table = ReportTable(["run", "loss"], [("a", 0.5), ("b", None)])
    chart = ReportChart("Loss", "step", "loss", [ChartSeries("a", [(0, 1.0), (1, 0.5)])])
    page, parsed = _read(ReportDocument("R", [ReportSection("Runs", table=table, charts=[chart])]))

    assert page.index("<table>") < page.index("<svg")
    cells = [attributes.get("class") for attributes in parsed.all_of("td")]
    assert cells == [None, "num", None, "num"]  # "-" in a column of numbers stays aligned with them
    assert [attributes.get("class") for attributes in parsed.all_of("th")] == [None, "num"]
    assert 'class="table-wrap"' in page  # a wide table scrolls inside its wrapper, not the page


def test_axes_have_four_to_six_round_ticks() -> None:
    _, parsed = _read(_training_report())
    x_ticks, y_ticks = parsed.tick_labels("middle"), parsed.tick_labels("end")

    assert 4 <= len(x_ticks) <= 6 and 4 <= len(y_ticks) <= 6
    for ticks in (x_ticks, y_ticks):
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 6) in {1, 2, 2.5, 5}
        assert ticks == pytest.approx([ticks[0] + index * step for index in range(len(ticks))])
    assert x_ticks[0] <= 0 and x_ticks[-1] >= 200
    assert y_ticks[0] <= 0 and y_ticks[-1] >= 2.3


def test_the_same_document_renders_the_same_page() -> None:
    assert _training_report().to_html() == _training_report().to_html()


# -- safety --------------------------------------------------------------------------------------------


def test_captured_text_is_escaped_everywhere() -> None:
    chart = ReportChart(HOSTILE, HOSTILE, HOSTILE, [ChartSeries(HOSTILE, [(0, 1), (1, 2)])])
    document = ReportDocument(
        HOSTILE,
        [ReportSection(HOSTILE, [HOSTILE], ReportTable([HOSTILE], [(HOSTILE,)]), charts=[chart, chart])],
    )
    page, parsed = _read(document)

    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot; onload=&quot;x &#x27; &amp; done" in page
    tags = {tag for tag, _ in parsed.elements}
    assert not tags & {"script", "img", "iframe", "object", "embed"}
    attributes = {name for _, element in parsed.elements for name in element}
    assert not {name for name in attributes if name.startswith("on")}
    assert "src" not in attributes
    # and every piece of text still reads as it was captured
    for tag in ("h1", "h2", "p", "th", "td", "figcaption"):
        assert HOSTILE in parsed.text_of(tag)
    assert parsed.text_of("text").count(HOSTILE) == 2 * 2  # the x and y axis labels of both charts


def test_the_page_references_nothing_outside_itself() -> None:
    document = _training_report()
    page, parsed = _read(document)

    assert "http" not in page and "//" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert not parsed.all_of("script")
    assert [tag for tag, _ in parsed.elements].count("style") == 1


def test_a_url_in_captured_text_stays_text() -> None:
    document = ReportDocument("R", [ReportSection("Links", ["see https://example.com//x"])])
    _, parsed = _read(document)

    assert parsed.text_of("p") == ["see https://example.com//x"]
    for _, attributes in parsed.elements:
        for name in ("src", "href", "action", "srcset", "xlink:href"):
            assert name not in attributes


# -- charts --------------------------------------------------------------------------------------------


def test_a_huge_series_is_thinned_but_keeps_its_spike_and_dip() -> None:
    count = 100_000
    points = [(step, (step * 7919 % 1000) / 1000) for step in range(count)]
    points[54_321] = (54_321, 50.0)
    points[12_345] = (12_345, -50.0)
    _, parsed = _read(
        _chart_document(ReportChart("Gradient norm", "step", "norm", [ChartSeries("g", points)]))
    )
    # a chart over the same range drawn from the extremes alone shows where they must land
    extremes = [ChartSeries("g", [(0, -50.0), (count - 1, 50.0)])]
    _, reference = _read(_chart_document(ReportChart("Gradient norm", "step", "norm", extremes)))

    (drawn,) = parsed.polylines()
    ((first, top_corner),) = [(line[0], line[1]) for line in reference.polylines()]
    assert len(drawn) <= 2000
    assert min(y for _, y in drawn) == top_corner[1]  # the spike reaches the top
    assert max(y for _, y in drawn) == first[1]  # the dip reaches the bottom
    assert drawn[0][0] == first[0] and drawn[-1][0] == top_corner[0]  # the whole run is drawn
    assert [x for x, _ in drawn] == sorted(x for x, _ in drawn)


def test_a_single_point_is_drawn_as_a_dot() -> None:
    chart = ReportChart("Accuracy", "epoch", "accuracy", [ChartSeries("acc", [(3, 0.83)])])
    _, parsed = _read(_chart_document(chart))

    assert len(parsed.all_of("svg")) == 1
    assert parsed.polylines() == []
    assert len(parsed.all_of("circle")) == 1
    x_ticks, y_ticks = parsed.tick_labels("middle"), parsed.tick_labels("end")
    assert x_ticks[0] < 3 < x_ticks[-1] and y_ticks[0] < 0.83 < y_ticks[-1]


def test_a_flat_series_gets_an_axis_around_its_value() -> None:
    chart = ReportChart(
        "Latency", "batch", "ms", [ChartSeries("p50", [(batch, 12.0) for batch in range(40)])]
    )
    _, parsed = _read(_chart_document(chart))

    (line,) = parsed.polylines()
    assert len({y for _, y in line}) == 1
    y_ticks = parsed.tick_labels("end")
    assert 4 <= len(y_ticks) <= 6 and y_ticks[0] < 12 < y_ticks[-1]


def test_series_of_different_lengths_and_negative_values_share_the_axes() -> None:
    chart = ReportChart(
        "Advantage",
        "step",
        "advantage",
        [
            ChartSeries("short", [(0, -3.0), (1, -1.0), (2, 0.5)]),
            ChartSeries("long", [(step, math.sin(step / 5) * 2) for step in range(50)]),
        ],
    )
    _, parsed = _read(_chart_document(chart))

    assert [len(line) for line in parsed.polylines()] == [3, 50]
    y_ticks = parsed.tick_labels("end")
    assert y_ticks[0] <= -3 and 0 in y_ticks and y_ticks[-1] >= 2
    assert any(line.get("class") == "zero" for line in parsed.all_of("line"))


def test_readings_that_are_not_finite_are_gaps_in_the_line() -> None:
    points = [(0, 1.0), (1, 1.5), (2, math.nan), (3, math.inf), (4, 2.0), (5, 2.5), (6, -math.inf), (7, 3.0)]
    page, parsed = _read(_chart_document(ReportChart("Loss", "step", "loss", [ChartSeries("l", points)])))

    # The line stops before the NaN and starts again after the infinity; a lone reading is a dot.
    assert [len(line) for line in parsed.polylines()] == [2, 2]
    assert [circle for circle in parsed.all_of("circle") if circle.get("class") == "series"]
    assert "nan" not in page and "inf" not in page
    # The infinities take no part in the scale: the y axis spans the finite readings.
    y_ticks = parsed.tick_labels("end")
    assert y_ticks[0] <= 1.0 and 3.0 <= y_ticks[-1] <= 10


def test_every_series_keeps_its_own_look_past_the_palette() -> None:
    series = [ChartSeries(f"run-{index}", [(0, index), (1, index + 1)]) for index in range(10)]
    _, parsed = _read(_chart_document(ReportChart("Runs", "epoch", "loss", series)))

    looks = {(line["stroke"], line.get("stroke-dasharray")) for line in parsed.all_of("polyline")}
    assert len(looks) == 10
    assert [f"run-{index}" for index in range(10)] == [
        text for text in parsed.text_of("text") if text.startswith("run-")
    ]  # the legend names each one, in order


def test_a_chart_without_points_says_so_instead_of_drawing() -> None:
    empty = ReportChart("Throughput", "step", "samples/s", [ChartSeries("gpu0", []), ChartSeries("gpu1", [])])
    nothing = ReportChart("Memory", "step", "bytes", [])
    _, parsed = _read(_chart_document(empty, nothing))

    assert parsed.all_of("svg") == []
    assert parsed.text_of("figcaption") == ["Throughput", "Memory"]
    assert parsed.text_of("p") == ["No data to draw.", "No data to draw."]


def test_an_empty_table_shows_a_no_rows_line() -> None:
    document = ReportDocument(
        "R", [ReportSection("Samples", ["No samples were captured."], ReportTable(["sample", "loss"]))]
    )
    _, parsed = _read(document)

    assert parsed.all_of("table") == []
    assert parsed.text_of("p") == ["No samples were captured.", "No rows."]
    assert "| sample |" not in document.to_markdown()  # Markdown leaves it out altogether


# -- in a real browser ---------------------------------------------------------------------------------


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """A non-interlaced 8-bit PNG's width, its pixel size in bytes, and its rows of unfiltered bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, compressed = 8, bytearray()
    width = height = channels = 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    previous, rows = bytearray(stride), []
    for index in range(height):
        start = index * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                guess = left + up - corner
                # the neighbour nearest the guess; ties go left, then up, as the PNG format says
                _, _, nearest = min(
                    (abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner)
                )
                line[i] = (line[i] + nearest) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, channels, rows


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_chromium_draws_the_page_offline(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_training_report().to_html(), encoding="utf-8")
    screenshot = tmp_path / "report.png"
    command = [
        str(_chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1200,1600",
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.exists()
    assert screenshot.stat().st_size > 10_000  # a blank page compresses to a few hundred bytes
    _, channels, rows = _png_pixels(screenshot.read_bytes())
    colours = {row[i : i + channels] for row in rows[::4] for i in range(0, len(row), channels * 4)}
    assert len(colours) > 16  # page background, panels, text and the chart's lines
