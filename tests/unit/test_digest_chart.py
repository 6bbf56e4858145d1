"""The digest's chart image: a PNG of failures per day by category, read back pixel by pixel.

Bars are filled rectangles of exact palette colours, so a bar's segments are found by colour and measured
by their longest vertical run (antialiased text never makes a long run of one colour).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image

from emr_triage.digest.chart import (
    OTHER_CATEGORIES,
    OTHER_COLOUR,
    PALETTE,
    ChartUnavailableError,
    chart_categories,
    render_failure_chart,
)

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Failures per day by category, 30 Nov - 6 Dec 2026"
WEEK = [date(2026, 11, 30) + timedelta(days=offset) for offset in range(7)]
Colour = tuple[int, int, int]


class Picture:
    """A rendered chart as rows of RGB pixels."""

    def __init__(self, png: bytes) -> None:
        self.png = png
        image = Image.open(io.BytesIO(png))
        self.format, self.size = image.format, image.size
        self.width, self.height = image.size
        data = image.convert("RGB").tobytes()
        self.pixels: list[Colour] = list(zip(data[0::3], data[1::3], data[2::3], strict=True))

    def column(self, x: int) -> list[Colour]:
        return self.pixels[x :: self.width]

    def colours(self) -> set[Colour]:
        return set(self.pixels)

    def run(self, x: int, colour: Colour) -> tuple[int, int]:
        """(top, length) of the longest vertical run of ``colour`` in column ``x``; length 0 if none."""
        best, start = (0, 0), None
        for y, pixel in enumerate([*self.column(x), None]):
            if pixel == colour and start is None:
                start = y
            elif pixel != colour and start is not None:
                best = max(best, (start, y - start), key=lambda found: found[1])
                start = None
        return best

    def bars(self, *colours: Colour) -> list[tuple[int, int]]:
        """Ranges of columns (first, last) holding a run of 3 pixels or more of one of ``colours``."""
        found: list[tuple[int, int]] = []
        for x in range(self.width):
            if any(self.run(x, colour)[1] >= 3 for colour in colours):
                if found and found[-1][1] == x - 1:
                    found[-1] = (found[-1][0], x)
                else:
                    found.append((x, x))
        return found


def render(days: list[date], counts: dict[date, dict[str, int]], **size: int) -> Picture:
    return Picture(render_failure_chart(days, counts, title=TITLE, **size))


def middle(columns: tuple[int, int]) -> int:
    return (columns[0] + columns[1]) // 2


A, B = PALETTE[0], PALETTE[1]  # the colours of the largest and the second largest category


@pytest.mark.parametrize(("width", "height"), [(1000, 500), (200, 200), (640, 360), (4000, 300)])
def test_the_chart_is_a_png_of_the_size_asked(width: int, height: int) -> None:
    # Given a week with failures, When drawn at a size
    picture = render(WEEK, {WEEK[0]: {"oom_heap": 2}}, width=width, height=height)

    # Then it is a PNG of that size
    assert picture.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert picture.format == "PNG"
    assert picture.size == (width, height)


def test_the_chart_is_drawn_not_blank() -> None:
    # Given a week of three categories
    counts = {day: {"oom_heap": 1 + n % 3, "shuffle_fetch_failed": n % 2, "disk_full": 1} for n, day in enumerate(WEEK)}

    # When drawn
    picture = render(WEEK, counts)

    # Then it has text (antialiased: many greys) and one colour per category, and nothing of the fourth
    assert len(picture.colours()) > 30
    assert {PALETTE[0], PALETTE[1], PALETTE[2]} <= picture.colours()
    assert PALETTE[3] not in picture.colours()


def test_a_day_stacks_its_categories_in_proportion_largest_at_the_bottom() -> None:
    # Given a day with 3 of A and 1 of B, then days of 1 of A and 2 of B (A largest over the period)
    days = WEEK[:3]
    counts = {days[0]: {"a_category": 3, "b_category": 1}, days[1]: {"a_category": 1}, days[2]: {"b_category": 2}}

    # When drawn
    picture = render(days, counts)

    # Then A's bars are the first two (the third is its legend swatch), B's the first, third and swatch
    a_bars, b_bars = picture.bars(A), picture.bars(B)
    assert len(a_bars) == 3 and len(b_bars) == 3
    first, second, third = middle(a_bars[0]), middle(a_bars[1]), middle(b_bars[1])
    assert a_bars[0] == b_bars[0]  # one bar holds both on the first day
    # And on the first day, A at the bottom is three times as tall as B above it
    (a_top, a_height), (b_top, b_height) = picture.run(first, A), picture.run(first, B)
    assert a_height == pytest.approx(3 * b_height, rel=0.05)
    assert b_top + b_height <= a_top
    # And the bars share one scale: 1 of A is a third of 3 of A, 2 of B twice 1 of B
    assert picture.run(second, A)[1] == pytest.approx(a_height / 3, rel=0.05)
    assert picture.run(third, B)[1] == pytest.approx(2 * b_height, rel=0.05)
    assert picture.run(second, B)[1] == 0


def test_a_day_without_failures_draws_no_bar() -> None:
    # Given three days, the middle one without failures, and the same days with one failure in the middle
    days = WEEK[:3]
    quiet = {days[0]: {"a_category": 3, "b_category": 1}, days[2]: {"a_category": 2}}
    busy = {**quiet, days[1]: {"a_category": 1}}

    # When both are drawn
    with_gap, without_gap = render(days, quiet).bars(A, B), render(days, busy).bars(A, B)

    # Then the quiet day's place is empty: the other bars (and the legend's swatches) stay where they were
    assert len(without_gap) == 4
    assert with_gap == [without_gap[0], without_gap[2], without_gap[3]]


def test_a_period_without_failures_draws_its_axes_and_says_so() -> None:
    # Given a week without failures (a zero count is no failure)
    picture = render(WEEK, {})
    zeros = render(WEEK, {WEEK[2]: {"oom_heap": 0}})

    # Then no bar is drawn, but the image is not only background: axes, labels and a message
    assert zeros.pixels == picture.pixels
    assert not picture.colours() & set(PALETTE)  # not OTHER_COLOUR: a neutral grey, like antialiased text
    assert len(picture.colours()) > 10

    def dark(pixel: Colour) -> bool:
        return max(pixel) < 140  # the axes' ink and the grey of labels, not the light grid

    assert max(sum(map(dark, picture.column(x))) for x in range(picture.width)) > picture.height / 2  # y axis
    assert any(
        sum(map(dark, picture.pixels[y * picture.width : (y + 1) * picture.width])) > picture.width / 2
        for y in range(picture.height)
    )  # x axis
    centre = [
        picture.pixels[y * picture.width + x]
        for y in range(picture.height * 2 // 5, picture.height * 3 // 5)
        for x in range(picture.width * 3 // 10, picture.width * 7 // 10)
    ]
    assert any(map(dark, centre)), "no message in the middle of the chart"


def test_more_than_eight_categories_fold_into_other_categories() -> None:
    # Given ten categories, c0 with 10 failures down to c9 with 1
    counts = {WEEK[0]: {f"c{n}": 10 - n for n in range(10)}}

    # When their legend is made and the chart drawn
    entries = chart_categories(WEEK, counts)
    picture = render(WEEK, counts)

    # Then the seven largest keep their colours and the rest are one grey series of 3 + 2 + 1
    assert [(entry.name, entry.total) for entry in entries] == [
        *((f"c{n}", 10 - n) for n in range(7)),
        (OTHER_CATEGORIES, 6),
    ]
    assert [entry.colour for entry in entries] == [*PALETTE[:7], OTHER_COLOUR]
    assert PALETTE[7] not in picture.colours()
    # And the bar stacks them in the legend's order from the bottom, other categories (6) on top
    x = middle(picture.bars(PALETTE[0])[0])
    runs = [picture.run(x, entry.colour) for entry in entries]
    tops = [top for top, _ in runs]
    assert tops == sorted(tops, reverse=True)
    assert runs[-1][1] == pytest.approx(runs[6][1] * 6 / 4, rel=0.1)


def test_eight_categories_keep_their_own_colours() -> None:
    counts = {WEEK[0]: {f"c{n}": 10 - n for n in range(8)}}

    entries = chart_categories(WEEK, counts)

    assert [entry.name for entry in entries] == [f"c{n}" for n in range(8)]
    assert [entry.colour for entry in entries] == list(PALETTE)
    assert PALETTE[7] in render(WEEK, counts).colours()


def test_categories_rank_by_total_over_the_period_then_by_name() -> None:
    # Given counts on days of the period and one outside it
    counts = {
        WEEK[0]: {"shuffle_fetch_failed": 2, "oom_heap": 1},
        WEEK[1]: {"oom_heap": 1, "disk_full": 2},
        date(2026, 11, 1): {"python_exception": 50},
    }

    assert [(entry.name, entry.total) for entry in chart_categories(WEEK, counts)] == [
        ("disk_full", 2),
        ("oom_heap", 2),
        ("shuffle_fetch_failed", 2),
    ]


def test_a_month_of_days_draws_a_bar_each() -> None:
    # Given 31 days, each with a failure, and a long category name
    days = [date(2026, 12, 1) + timedelta(days=offset) for offset in range(31)]
    counts = {day: {"executor_lost_" * 8: 1 + n % 4} for n, day in enumerate(days)}

    # When drawn at the default size and at the smallest
    bars = render(days, counts).bars(A)
    small = render(days, counts, width=200, height=200)

    # Then every day has its bar (and the legend its swatch)
    assert len(bars) == 32
    assert small.size == (200, 200) and A in small.colours()


@pytest.mark.parametrize(("width", "height"), [(1000, 500), (300, 200)])
def test_long_names_and_titles_are_cut_not_drawn_past_the_edge(width: int, height: int) -> None:
    # Given a category name and a title far wider than the image
    name = "executor_lost_spot_interruption_or_node_decommissioned_" * 6
    png = render_failure_chart(WEEK, {WEEK[0]: {name: 12}}, title="Failures " * 60, width=width, height=height)
    picture = Picture(png)

    # Then the right margin is still background: both end in an ellipsis before it
    margin = [pixel for x in range(width - 8, width) for pixel in picture.column(x)]
    assert set(margin) == {(255, 255, 255)}


@pytest.mark.parametrize(
    ("days", "counts", "size", "message"),
    [
        ([], {}, {}, "days is empty"),
        (WEEK, {WEEK[1]: {"oom_heap": -1}}, {}, "negative"),
        (WEEK, {}, {"width": 199}, "width 199"),
        (WEEK, {}, {"width": 4001}, "width 4001"),
        (WEEK, {}, {"height": 199}, "height 199"),
        (WEEK, {}, {"height": 4001}, "height 4001"),
        ([*WEEK, WEEK[0]], {}, {}, "more than once"),
        ([date(2026, 1, 1) + timedelta(days=n) for n in range(32)], {}, {}, "at most 31"),
    ],
)
def test_bad_input_is_refused_with_its_reason(
    days: list[date], counts: dict[date, dict[str, int]], size: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_failure_chart(days, counts, title=TITLE, **size)


def test_without_pillow_the_error_names_the_missing_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a function deployed without the charts layer (None in sys.modules makes an import fail)
    monkeypatch.setitem(sys.modules, "PIL", None)

    # When it draws a chart, Then the error says which layer to attach
    with pytest.raises(ChartUnavailableError, match=r"charts layer \(layers/charts\) is not attached") as caught:
        render_failure_chart(WEEK, {WEEK[0]: {"oom_heap": 1}}, title=TITLE)
    assert isinstance(caught.value, RuntimeError)


def test_the_module_imports_without_importing_pillow() -> None:
    # Given a fresh interpreter, When it imports the chart module, Then Pillow is not loaded
    script = "import sys, emr_triage.digest.chart; print(sorted(m for m in sys.modules if m.split('.')[0] == 'PIL'))"
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "common")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT, env=environment
    )
    assert result.stdout.strip() == "[]"
