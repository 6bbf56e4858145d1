"""The digest's chart: failures per day by category, stacked bars in a PNG, drawn with Pillow.

Pillow, not matplotlib: matplotlib brings numpy (and Pillow itself), 60-100 MB more in a Lambda layer,
against Lambda's 250 MB unzipped for a function and its layers; Pillow alone is one wheel, 23 MB
installed on arm64, with a scalable font of its own. It is its own layer (layers/charts), attached only
to the digest function, so it is imported inside :func:`render_failure_chart`: every other function
imports this package without it, and none pays for it at cold start.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from emr_triage.exceptions import EmrTriageError

if TYPE_CHECKING:
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import BaseImageFont

Colour = tuple[int, int, int]

# Okabe and Ito's palette, told apart with each common colour-vision deficiency and in greyscale. The
# largest categories come first, so the two at the bottom of most bars are the two that differ most.
PALETTE: tuple[Colour, ...] = (
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
    (0, 0, 0),  # black
)
OTHER_COLOUR: Colour = (153, 153, 153)  # a grey, outside the palette: "the rest", not a ninth category
OTHER_CATEGORIES = "other categories"
MAX_DAYS = 31  # "Mon 30" names a day only within a month
MIN_SIDE, MAX_SIDE = 200, 4000

_BACKGROUND: Colour = (255, 255, 255)
_INK: Colour = (34, 34, 34)
_MUTED: Colour = (102, 102, 102)
_GRID: Colour = (226, 226, 226)
# Our own names, not strftime's %a, which follows the locale.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_ELLIPSIS = "\u2026"  # the bundled font (Aileron) has it; it has no en dash: write titles with "-"


class ChartUnavailableError(EmrTriageError, RuntimeError):
    """Pillow cannot be imported: the function draws charts but was deployed without the layer that has it."""


@dataclass(frozen=True)
class LegendEntry:
    """One series of the chart: a category (or the fold of the smallest ones), its total and its colour."""

    name: str
    total: int
    colour: Colour


def chart_categories(days: Sequence[date], counts: Mapping[date, Mapping[str, int]]) -> list[LegendEntry]:
    """The chart's series, as its legend lists them and its bars stack them from the bottom up.

    Largest total first, ties by name, so that a category keeps its colour between two runs on the same
    data. Past the palette's eight colours, the smallest categories are folded into one grey
    "other categories": the seven largest keep their colours, so at most eight colours are ever shown.

    Parameters
    ----------
    days:
        The period's days; counts of other days are left out.
    counts:
        Failures by day, then by category id (``oom_heap``); a missing day or category counts as zero.

    Returns
    -------
    list[LegendEntry]
        The categories with failures in the period, none when it had none.

    Raises
    ------
    ValueError
        When a count is negative.
    """
    _check_counts(counts)
    totals: dict[str, int] = {}
    for day in days:
        for category, count in counts.get(day, {}).items():
            if count:
                totals[category] = totals.get(category, 0) + count
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) <= len(PALETTE):
        return [LegendEntry(name, total, colour) for (name, total), colour in zip(ranked, PALETTE, strict=False)]
    kept = [LegendEntry(name, total, colour) for (name, total), colour in zip(ranked, PALETTE[:-1], strict=False)]
    rest = sum(total for _, total in ranked[len(kept) :])
    return [*kept, LegendEntry(OTHER_CATEGORIES, rest, OTHER_COLOUR)]


def render_failure_chart(
    days: Sequence[date],
    counts: Mapping[date, Mapping[str, int]],
    *,
    title: str,
    width: int = 1000,
    height: int = 500,
) -> bytes:
    """Draw failures per day by category as stacked bars, one bar per day, with a legend of totals.

    A day without failures has no bar; a period without any has its axes and "No failures in this
    period" in the middle. Names too long for the legend (or a title too long for the image) end in an
    ellipsis; day labels that do not fit side by side go on two lines, then skip days.

    Parameters
    ----------
    days:
        The period's days (at most 31, each once), drawn left to right in this order.
    counts:
        Failures by day, then by category id; see :func:`chart_categories`.
    title:
        The heading, e.g. "Failures per day by category, 30 Nov - 6 Dec 2026".
    width, height:
        The image's size in pixels, each between 200 and 4000.

    Returns
    -------
    bytes
        The chart as a PNG.

    Raises
    ------
    ValueError
        When ``days`` is empty, too long or repeats a day, a count is negative, or a side is out of range.
    ChartUnavailableError
        When Pillow cannot be imported (the charts layer is not attached to the function).
    """
    _check_period(days, width, height)
    entries = chart_categories(days, counts)
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise ChartUnavailableError(
            "cannot draw the digest chart: Pillow cannot be imported, so the charts layer (layers/charts) "
            "is not attached to this function; attach it in template.yaml"
        ) from exc
    image = Image.new("RGB", (width, height), _BACKGROUND)
    pen = _Pen(ImageDraw.Draw(image), ImageFont.load_default)
    _draw_chart(pen, width, height, title, list(days), _stacks(days, counts, entries), entries)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _check_counts(counts: Mapping[date, Mapping[str, int]]) -> None:
    for day, by_category in counts.items():
        for category, count in by_category.items():
            if count < 0:
                raise ValueError(
                    f"count {count} for {category!r} on {day.isoformat()} is negative: counts are numbers of failures"
                )


def _check_period(days: Sequence[date], width: int, height: int) -> None:
    if not days:
        raise ValueError("days is empty: pass the period's days, even those without failures")
    if len(days) > MAX_DAYS:
        raise ValueError(f"{len(days)} days: the chart shows at most {MAX_DAYS}, a month; chart longer periods by week")
    if len(set(days)) != len(days):
        raise ValueError("days lists a day more than once: pass each day of the period once, in order")
    for side, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise ValueError(f"{side} {value} is out of range: the chart is {MIN_SIDE} to {MAX_SIDE} pixels a side")


def _stacks(
    days: Sequence[date], counts: Mapping[date, Mapping[str, int]], entries: list[LegendEntry]
) -> list[list[int]]:
    """Each day's counts in the order of ``entries``; a category without an entry is in the fold (the last)."""
    index = {entry.name: position for position, entry in enumerate(entries)}
    stacks = []
    for day in days:
        stack = [0] * len(entries)
        for category, count in counts.get(day, {}).items():
            if count:
                stack[index.get(category, len(entries) - 1)] += count
        stacks.append(stack)
    return stacks


def _ticks(peak: int, most: int) -> tuple[int, int]:
    """(step, top) of an integer axis: the smallest step of 1, 2 or 5 times a power of ten that reaches
    ``peak`` in at most ``most`` steps, and the tick at or above it."""
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * magnitude
            if math.ceil(peak / step) <= most:
                return step, math.ceil(peak / step) * step
        magnitude *= 10


def _stroke(size: int) -> int:
    """Lines thicken with the text, so that a 4000-pixel chart is not drawn in hairlines."""
    return max(1, round(size / 14))


def _day_label(day: date) -> tuple[str, str]:
    return _WEEKDAYS[day.weekday()], str(day.day)


class _Pen:
    """Text measured and placed by its middle line, the same with Pillow's scalable font and its bitmap one
    (which has no anchors), with one font loaded per size."""

    def __init__(self, draw: ImageDraw, load: Callable[[int], BaseImageFont]) -> None:
        self.draw = draw
        self._load = load
        self._fonts: dict[int, BaseImageFont] = {}

    def font(self, size: int) -> BaseImageFont:
        if size not in self._fonts:
            self._fonts[size] = self._load(size)
        return self._fonts[size]

    def width(self, text: str, size: int) -> float:
        return self.draw.textlength(text, font=self.font(size))

    def _extent(self, size: int) -> tuple[float, float]:
        """Top and bottom of a line of digits, capitals and descenders, so that labels line up."""
        _, top, _, bottom = self.draw.textbbox((0, 0), "0Mg", font=self.font(size))
        return top, bottom

    def line(self, size: int) -> int:
        top, bottom = self._extent(size)
        return math.ceil(bottom - top)

    def write(
        self,
        x: float,
        middle: float,
        text: str,
        size: int,
        fill: Colour = _INK,
        align: Literal["left", "centre", "right"] = "left",
    ) -> None:
        shift = {"left": 0.0, "centre": 0.5, "right": 1.0}[align] * self.width(text, size)
        top, bottom = self._extent(size)
        self.draw.text((x - shift, middle - (top + bottom) / 2), text, fill=fill, font=self.font(size))

    def fit(self, text: str, size: int, room: float) -> str:
        """``text``, or its longest start that fits ``room`` pixels with an ellipsis, or nothing."""
        if self.width(text, size) <= room:
            return text
        low, high = 0, len(text)  # the longest fitting start is text[:low]
        while low < high:
            middle = (low + high + 1) // 2
            if self.width(text[:middle].rstrip() + _ELLIPSIS, size) <= room:
                low = middle
            else:
                high = middle - 1
        if low == 0 and self.width(_ELLIPSIS, size) > room:
            return ""
        return text[:low].rstrip() + _ELLIPSIS


@dataclass(frozen=True)
class _Plot:
    """The bars' area in pixels (``bottom`` is the zero line) and the count at its top."""

    left: int
    top: int
    right: int
    bottom: int
    peak: int

    def y(self, count: float) -> int:
        return round(self.bottom - count * (self.bottom - self.top) / self.peak) if self.peak else self.bottom


def _draw_chart(
    pen: _Pen,
    width: int,
    height: int,
    title: str,
    days: list[date],
    stacks: list[list[int]],
    entries: list[LegendEntry],
) -> None:
    """Lay the chart out from the outside in: the title, the legend's column, then the y axis's ticks,
    whose widest label sets the left edge, which sets each day's width, which sets the day labels' rows."""
    size = max(9, min(40, round(min(width, 2 * height) / 70)))
    pad, line = round(size * 1.2), pen.line(size)
    title_size = round(size * 1.3)
    pen.write(pad, pad + pen.line(title_size) / 2, pen.fit(title, title_size, width - 2 * pad), title_size)
    top = pad + pen.line(title_size) + pad + line  # room for the tallest bar's total above it
    legend_width = round(width * 0.27) if entries else 0
    right = width - pad - (legend_width + pad if entries else 0)
    peak = max(sum(stack) for stack in stacks)
    bottom_guess = height - pad - 2 * line - size
    step, axis_top = _ticks(peak, max(1, min(6, int((bottom_guess - top) // (line * 2.5))))) if peak else (1, 0)
    ticks = range(0, axis_top + 1, step)
    left = pad + math.ceil(max(pen.width(str(tick), size) for tick in ticks)) + size // 2
    slot = (right - left) / len(days)
    rows, every = _label_layout(pen, days, size, slot)
    plot = _Plot(left, top, right, height - pad - rows * round(line * 1.2) - size // 2, axis_top)
    _draw_axes(pen, plot, ticks, size)
    _draw_bars(pen, plot, stacks, entries, size)
    _draw_days(pen, plot, days, size, rows, every)
    if not entries:
        middle = (plot.top + plot.bottom) / 2
        message = "No failures in this period"
        big = round(size * 1.3)
        pen.write((left + right) / 2, middle, pen.fit(message, big, right - left), big, _MUTED, "centre")
    else:
        _draw_legend(pen, entries, width - pad - legend_width, plot.top, width - pad, plot.bottom, size)


def _label_layout(pen: _Pen, days: list[date], size: int, slot: float) -> tuple[int, int]:
    """(rows, every): "Mon 30" on one row if every label fits its day, else on two, naming one day in
    ``every`` when even that is too wide."""
    gap = size / 2
    if max(pen.width(" ".join(_day_label(day)), size) for day in days) + gap <= slot:
        return 1, 1
    widest = max(pen.width(part, size) for day in days for part in _day_label(day)) + gap
    return 2, max(1, math.ceil(widest / slot))


def _draw_days(pen: _Pen, plot: _Plot, days: list[date], size: int, rows: int, every: int) -> None:
    slot, line = (plot.right - plot.left) / len(days), pen.line(size)
    for position, day in enumerate(days):
        if position % every:
            continue
        centre = plot.left + slot * (position + 0.5)
        labels = [" ".join(_day_label(day))] if rows == 1 else list(_day_label(day))
        for row, label in enumerate(labels):
            middle = plot.bottom + size // 2 + round(line * 1.2) * row + line / 2
            pen.write(centre, middle, label, size, _MUTED, "centre")


def _draw_axes(pen: _Pen, plot: _Plot, ticks: range, size: int) -> None:
    stroke = _stroke(size)
    for tick in ticks:
        y = plot.y(tick)
        if tick:
            pen.draw.line([(plot.left, y), (plot.right, y)], fill=_GRID, width=stroke)
        pen.write(plot.left - size / 2, y, str(tick), size, _MUTED, "right")
    pen.draw.line([(plot.left, plot.top), (plot.left, plot.bottom)], fill=_INK, width=stroke)
    pen.draw.line([(plot.left, plot.bottom), (plot.right, plot.bottom)], fill=_INK, width=stroke)


def _draw_bars(pen: _Pen, plot: _Plot, stacks: list[list[int]], entries: list[LegendEntry], size: int) -> None:
    slot = (plot.right - plot.left) / len(stacks)
    bar, stroke = max(1, round(slot * 0.7)), _stroke(size)
    for position, stack in enumerate(stacks):
        x0 = round(plot.left + slot * position + (slot - bar) / 2)
        below, running = plot.bottom, 0
        for entry, count in zip(entries, stack, strict=True):
            if not count:
                continue
            running += count
            # Each boundary is rounded from the running total, so the segments add up to the bar; a
            # segment keeps at least a pixel, and a white line parts it from the one below.
            y = min(plot.y(running), below - 1)
            parting = stroke if below < plot.bottom and below - y > 2 * stroke else 0
            pen.draw.rectangle([(x0, y), (x0 + bar - 1, below - 1 - parting)], fill=entry.colour)
            below = y
        if running and pen.width(str(running), size) <= slot:
            pen.write(x0 + bar / 2, below - size / 2 - pen.line(size) / 2, str(running), size, _INK, "centre")


def _draw_legend(
    pen: _Pen, entries: list[LegendEntry], left: int, top: int, right: int, bottom: int, size: int
) -> None:
    """Swatch, name and total per row, totals right-aligned; the font shrinks until every row fits."""
    while size > 7 and len(entries) * pen.line(size) * 1.7 > bottom - top:
        size -= 1
    line = pen.line(size)
    row = max(line * 1.7, line + 2)
    totals = max(pen.width(str(entry.total), size) for entry in entries)
    for position, entry in enumerate(entries):
        middle = top + row * (position + 0.5)
        half = line / 2
        pen.draw.rectangle([(left, round(middle - half)), (left + line, round(middle + half))], fill=entry.colour)
        name_left = left + line + size / 2
        room = right - totals - size - name_left
        pen.write(name_left, middle, pen.fit(entry.name, size, room), size)
        pen.write(right, middle, str(entry.total), size, _MUTED, "right")
