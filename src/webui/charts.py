"""SVG geometry for the server-rendered charts (presentation only).

The service returns chart series as data; this module turns them into
coordinates and German labels that ``_charts.html`` draws, so charts need no
script: axes with compact units (``1,5 Mio.``) in a margin sized for them, at
least four dated time ticks, a legend per kind of money and currency, and a
``<title>`` on every point and bar, so a hover shows its value.

Times are drawn in UTC and say so. Each tick and title that stands for an
instant carries it (ISO) with the UTC text it shows, so the page script can
show it in local time when the trader switches to "Lokal". Day and week
buckets are UTC days and stay so (the chart says "Tage in UTC").
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from operator import attrgetter
from typing import TypeVar

from src.experiments.live_session_record import utc_instant
from src.experiments.session_head import currency_decimals
from src.webui.formatting import (
    fmt_compact,
    fmt_count,
    fmt_date,
    fmt_money,
    fmt_pct,
    fmt_time,
)
from src.webui.presentation import fmt_iso, pnl_class
from src.webui.session_profit import DailyPnl
from src.webui.session_stats import DrawdownSeries, PnlLine
from src.webui.vocabulary import money_word

WIDTH, HEIGHT = 420, 220
RIGHT, TOP, BOTTOM = 14, 26, 34
# Axis text is 11 px, on phones 14 px (live-track.css: the SVG is drawn smaller
# there): a digit is 0.64 em (9 px at 14 px) in DejaVu Sans, the minus sign
# 0.84 em, so a minus gets 3 px more; plus the gap to the plot.
AXIS_CHAR_WIDTH = 9.0
MINUS_EXTRA_WIDTH = 3.0
AXIS_GAP = 10.0
MIN_LEFT = 34.0
MAX_BAR_WIDTH = 28.0
TIME_TICKS = 5
TICK_LABEL_CHARS = 6  # "25.11.", the widest line of a time tick
TICK_GAP = 8.0  # at least this much room between two tick labels
# The narrowest time axis: ticks (HH:MM) a quarter of an hour apart stay distinct.
MIN_TIME_SPAN = 3600.0
# Few session bars on a time axis keep this much room (share of the span) at each end.
TIME_MARGIN = 0.1
BAR_GAP = 2.0
BUCKET_SECONDS = {"day": 86400, "week": 7 * 86400}
FIRST_INSTANT = datetime(1, 1, 2, tzinfo=timezone.utc).timestamp()
LAST_INSTANT = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()
ZONE_UTC = "Zeit: UTC"  # instants: the page script names the local zone instead
ZONE_UTC_DAYS = "Tage in UTC"  # buckets are UTC days, whatever zone the page shows
SERIES_COLOURS = 6
TOO_FEW_POINTS = "Noch nicht genug Daten für dieses Diagramm."
OUT_OF_RANGE = "Die Werte sind zu groß für dieses Diagramm."
_Item = TypeVar("_Item")


@dataclass(frozen=True)
class AxisLabel:
    at: float
    text: str
    sub: str = ""  # a second line (the time under a date)
    anchor: str = "middle"
    iso: str = ""  # the instant a time tick stands for ("" for a UTC day or week)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str
    css: str = ""
    iso: str = ""  # the instant the title names ...
    time_text: str = ""  # ... as the title shows it in UTC


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str
    iso: str = ""
    time_text: str = ""


@dataclass
class Line:
    """One series: its path, hover dots and legend entry."""

    path: str
    css: str
    label: str
    value: str
    positive: bool
    dots: list[Dot] = field(default_factory=list)


@dataclass(frozen=True)
class LegendEntry:
    css: str
    label: str
    value: str = ""
    value_css: str = ""


@dataclass
class Chart:
    """Everything the template needs to draw one chart."""

    title: str
    unit: str
    empty: bool
    note: str = TOO_FEW_POINTS
    zone: str = ZONE_UTC
    zone_follows: bool = True  # False: UTC days, the same in every zone
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: float = MIN_LEFT
    plot_right: float = WIDTH - RIGHT
    plot_top: float = TOP
    plot_bottom: float = HEIGHT - BOTTOM
    zero_y: float = 0.0
    lines: list[Line] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    legend: list[LegendEntry] = field(default_factory=list)
    y_labels: list[AxisLabel] = field(default_factory=list)
    x_labels: list[AxisLabel] = field(default_factory=list)


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)


def _value_scale(
    values: Sequence[float], least_step: float = 0.0
) -> tuple[float, float, float] | None:
    """Axis bounds on whole steps and the step (at least ``least_step``); None when
    not drawable (not finite)."""
    low, high = min(0.0, *values), max(0.0, *values)
    if not math.isfinite(high - low):
        return None
    if high == low:
        high = low + max(1.0, least_step)
    step = max(_nice_step(high - low), least_step)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    return (low, high, step) if math.isfinite(high - low) else None


def _out_of_range(chart: Chart) -> Chart:
    chart.empty, chart.note = True, OUT_OF_RANGE
    return chart


def _y_of(value: float, low: float, high: float, chart: Chart) -> float:
    span = chart.plot_bottom - chart.plot_top
    return round(chart.plot_bottom - (value - low) / (high - low) * span, 2)


def _y_axis(
    chart: Chart, scale: tuple[float, float, float], text: Callable[[float, float], str]
) -> None:
    """Label the value axis and make the left margin as wide as its longest label."""
    low, high, step = scale
    values = [low + i * step for i in range(round((high - low) / step) + 1)]
    texts = [text(value, step) for value in values]
    chart.plot_left = max(MIN_LEFT, AXIS_GAP + max(map(_label_width, texts)))
    chart.y_labels = [
        AxisLabel(_y_of(value, low, high, chart), label, anchor="end")
        for value, label in zip(values, texts, strict=True)
    ]
    chart.zero_y = _y_of(0.0, low, high, chart)


def _label_width(text: str) -> float:
    return AXIS_CHAR_WIDTH * len(text) + MINUS_EXTRA_WIDTH * text.count("−")


def _utc_text(moment: datetime) -> str:
    """An instant as titles show it: ``25.11.2026 03:48 UTC``."""
    return f"{fmt_time(moment)} UTC"


def _tick_text(moment: datetime, span_seconds: float, clock: bool) -> tuple[str, str]:
    """A date, and under it the time when the chart spans less than a few days."""
    instant = utc_instant(moment)
    sub = instant.strftime("%H:%M") if clock and span_seconds < 4 * 86400 else ""
    return instant.strftime("%d.%m."), sub


def _tick_indices(count: int, step_px: float) -> list[int]:
    """Which of ``count`` evenly spaced positions get a label: up to five, at least
    four, spread so that neighbouring date labels never overlap."""
    if count <= 1:
        return list(range(count))
    gap_slots = math.ceil((TICK_LABEL_CHARS * AXIS_CHAR_WIDTH + TICK_GAP) / max(step_px, 1e-9))
    ticks = min(TIME_TICKS, (count - 1) // gap_slots + 1)
    ticks = max(ticks, min(TIME_TICKS - 1, count))
    # Rounding down keeps every gap at least as wide as the (fractional) step.
    return [i * (count - 1) // (ticks - 1) for i in range(ticks)]


def _tick_anchor(chart: Chart, x: float, text: str) -> str:
    """Centred under its tick, unless that would cut the label at the chart's edge."""
    half = len(text) * AXIS_CHAR_WIDTH / 2
    if x - half < 0:
        return "start"
    return "end" if x + half > chart.width else "middle"


def _time_ticks(
    chart: Chart,
    moments: Sequence[datetime],
    position: Callable[[int], float],
    instants: bool = True,
) -> None:
    """At least four (five) labelled ticks with dates, spread over the series.

    ``instants`` False: the moments start UTC days or weeks, labelled by date
    only and not moved by the page's time zone switch.
    """
    count = len(moments)
    if count == 0:
        return
    step_px = (position(count - 1) - position(0)) / (count - 1) if count > 1 else 0.0
    span = (utc_instant(moments[-1]) - utc_instant(moments[0])).total_seconds()
    labels = []
    for i in _tick_indices(count, step_px):
        text, sub = _tick_text(moments[i], span, clock=instants)
        x = position(i)
        iso = fmt_iso(moments[i]) if instants else ""
        labels.append(AxisLabel(x, text, sub, _tick_anchor(chart, x, text), iso))
    chart.x_labels = labels


def _time_domain(times: Sequence[float], margin: float = 0.0) -> tuple[float, float]:
    """First instant and span of a time axis over ``times`` (epoch seconds).

    At least ``MIN_TIME_SPAN`` wide, centred on the points, so even two
    sessions a minute apart get ticks with distinct labels; ``margin`` leaves
    room at both ends (a share of the span) for bars drawn around their time.
    """
    low, high = min(times), max(times)
    half = max(high - low, MIN_TIME_SPAN) / 2 * (1 + 2 * margin)
    middle = (low + high) / 2
    # Records of year 1 or 9999 exist: the axis never leaves what a datetime can hold.
    first = max(middle - half, FIRST_INSTANT)
    return first, min(middle + half, LAST_INSTANT) - first


def _even_time_ticks(
    chart: Chart, first: float, span: float, x_of: Callable[[float], float]
) -> None:
    """``TIME_TICKS`` ticks evenly spread over a continuous time axis."""
    at = [first + span * i / (TIME_TICKS - 1) for i in range(TIME_TICKS)]
    _time_ticks(chart, [datetime.fromtimestamp(t, timezone.utc) for t in at], lambda i: x_of(at[i]))


def _series_css(index: int, real_money: bool) -> str:
    return f"series-{index % SERIES_COLOURS}" + ("" if real_money else " series-sim")


# The currencies a trader meets most, each with a colour of its own; others by a
# stable hash of their name, so a currency looks the same in every chart and page.
_CURRENCY_COLOURS = {"USDT": 0, "BTC": 1, "EUR": 2, "USDC": 3, "USD": 4, "ETH": 5}


def _currency_colour(currency: str) -> int:
    known = _CURRENCY_COLOURS.get(currency.upper())
    return known if known is not None else zlib.crc32(currency.encode()) % SERIES_COLOURS


def _currency_order(currencies: Sequence[str]) -> dict[str, int]:
    """One colour per currency, the same in every chart (never by position in one chart)."""
    return {currency: _currency_colour(currency) for currency in set(currencies)}


def series_label(real_money: bool, currency: str) -> str:
    return f"{money_word(real_money)} · {currency or '¤'}"


# --- Cumulative PnL -------------------------------------------------------------

PNL_TITLE = "Kumulierter Realized PnL"


def pnl_charts(lines: Sequence[PnlLine]) -> list[Chart]:
    """Cumulative realized PnL over time: one chart per currency, one line per kind
    of money in it.

    Each currency gets its own value axis in its own decimals: on one shared
    axis a USDT line in the thousands flattened a BTC line of 0,00x onto zero.
    All share one time axis, so the charts read side by side. Drawn from two
    points on, even when they are in two currencies (each shown as its dot):
    one session alone is no chart.
    """
    points = [p for line in lines for p in line.points]
    if len(points) < 2:
        return [Chart(title=PNL_TITLE, unit="", empty=True)]
    domain = _time_domain([utc_instant(p.at).timestamp() for p in points])
    colours = _currency_order([line.currency for line in lines])
    return [
        _pnl_chart(currency, group, colours[currency], domain)
        for currency, group in _by_currency(lines, attrgetter("currency"))
    ]


def _by_currency(
    items: Iterable[_Item], currency: Callable[[_Item], str]
) -> list[tuple[str, list[_Item]]]:
    """``items`` grouped by currency, in the order every chart row uses (unknown last)."""
    groups: dict[str, list[_Item]] = {}
    for item in items:
        groups.setdefault(currency(item), []).append(item)
    return sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0]))


def _money_axis(currency: str) -> Callable[[float, float], str]:
    """Tick text in the currency's own decimals (``0,0015`` for BTC, ``2 Tsd.`` for USDT)."""
    most = currency_decimals(currency)
    return lambda value, step: fmt_compact(value, step, most)


def _pnl_chart(
    currency: str, lines: Sequence[PnlLine], colour: int, domain: tuple[float, float]
) -> Chart:
    """One currency's lines (real and simulated money apart) on its own value axis."""
    chart = Chart(
        title=f"{PNL_TITLE} · {currency or '¤'}",
        unit=f"Realized PnL in {currency or 'unbekannter Währung'}",
        empty=False,
    )
    # The smallest step is the currency's smallest shown unit: ticks never repeat.
    scale = _value_scale(
        [p.value for line in lines for p in line.points], 10.0 ** -currency_decimals(currency)
    )
    if scale is None:
        return _out_of_range(chart)
    low, high, _ = scale
    _y_axis(chart, scale, _money_axis(currency))
    first, span = domain
    width = chart.plot_right - chart.plot_left

    def x_of(t: float) -> float:
        return round(chart.plot_left + (t - first) / span * width, 2)

    for line in lines:
        if not line.points:
            continue
        coords = [
            (x_of(utc_instant(p.at).timestamp()), _y_of(p.value, low, high, chart))
            for p in line.points
        ]
        css = _series_css(colour, line.real_money)
        label = series_label(line.real_money, line.currency)
        last = line.points[-1].value
        chart.lines.append(
            Line(
                path="M" + " L".join(f"{x},{y}" for x, y in coords),
                css=css,
                label=label,
                value=fmt_money(last, line.currency),
                positive=last >= 0,
                dots=[
                    Dot(
                        x,
                        y,
                        f"{_utc_text(p.at)} · {label}: {fmt_money(p.value, line.currency)}",
                        fmt_iso(p.at),
                        _utc_text(p.at),
                    )
                    for (x, y), p in zip(coords, line.points, strict=True)
                ],
            )
        )
        chart.legend.append(
            LegendEntry(css, label, fmt_money(last, line.currency), pnl_class(last, line.currency))
        )
    _even_time_ticks(chart, first, span, x_of)
    return chart


# --- Drawdown -----------------------------------------------------------------

_BUCKET_TITLES = {
    "session": "Max Drawdown je Session",
    "day": "Schlechtester Max Drawdown je Tag",
    "week": "Schlechtester Max Drawdown je Woche",
}


def _bar_slots(chart: Chart, count: int) -> tuple[float, float]:
    """Slot width and bar width for ``count`` bars: a few still look like bars."""
    slot = (chart.plot_right - chart.plot_left) / count
    return slot, min(max(slot * 0.7, 1.0), MAX_BAR_WIDTH)


def _slot_centre(chart: Chart, slot: float) -> Callable[[int], float]:
    return lambda i: round(chart.plot_left + (i + 0.5) * slot, 2)


def _drawdown_layout(chart: Chart, series: DrawdownSeries) -> tuple[list[float], float]:
    """Each bar's centre and the bar width; labels the time axis on the way.

    Many bars sit side by side, one slot each, ticked at some of them. Fewer
    bars than ticks would leave too few ticks, so they go on a real time axis:
    sessions at their time, day and week buckets among the empty buckets
    around them.
    """
    bars = series.bars
    if len(bars) >= TIME_TICKS:
        slot, width = _bar_slots(chart, len(bars))
        centre = _slot_centre(chart, slot)
        instants = series.bucket == "session"
        _time_ticks(chart, [bar.start for bar in bars], centre, instants)
        return [centre(i) for i in range(len(bars))], width
    if series.bucket == "session":
        return _few_sessions(chart, [utc_instant(bar.start).timestamp() for bar in bars])
    return _few_buckets(
        chart, [utc_instant(bar.start).timestamp() for bar in bars], BUCKET_SECONDS[series.bucket]
    )


def _few_sessions(chart: Chart, times: Sequence[float]) -> tuple[list[float], float]:
    """A few session bars at their time on a continuous axis with evenly spread ticks."""
    first, span = _time_domain(times, TIME_MARGIN)
    plot = chart.plot_right - chart.plot_left

    def x_of(t: float) -> float:
        return round(chart.plot_left + (t - first) / span * plot, 2)

    _even_time_ticks(chart, first, span, x_of)
    return _side_by_side(chart, [x_of(t) for t in times], MAX_BAR_WIDTH), MAX_BAR_WIDTH


def _side_by_side(chart: Chart, centres: Sequence[float], width: float) -> list[float]:
    """Bars closer than their width (sessions of the same minute) stand side by side
    around their common time instead of hiding each other."""
    groups: list[list[float]] = []
    for centre in centres:
        if groups and centre - groups[-1][-1] < width + BAR_GAP:
            groups[-1].append(centre)
        else:
            groups.append([centre])
    placed: list[float] = []
    for group in groups:
        half = (len(group) - 1) * (width + BAR_GAP) / 2
        low, high = chart.plot_left + width / 2 + half, chart.plot_right - width / 2 - half
        middle = min(max((group[0] + group[-1]) / 2, low), high)
        placed.extend(round(middle - half + k * (width + BAR_GAP), 2) for k in range(len(group)))
    return placed


def _few_buckets(chart: Chart, starts: Sequence[float], size: int) -> tuple[list[float], float]:
    """A few day or week bars among the empty buckets around them: one slot per bucket,
    at least as many slots as ticks, so every tick is a date of its own."""
    first = starts[0]
    count = round((starts[-1] - first) / size) + 1
    padding = max(0, TIME_TICKS - count)
    before = min(padding // 2, max(0, int((first - FIRST_INSTANT) // size)))
    padding = min(padding, before + max(0, int((LAST_INSTANT - starts[-1]) // size) - 1))
    slots = [first + (k - before) * size for k in range(count + padding)]
    slot, width = _bar_slots(chart, len(slots))
    centre = _slot_centre(chart, slot)
    moments = [datetime.fromtimestamp(t, timezone.utc) for t in slots]
    _time_ticks(chart, moments, centre, instants=False)
    return [centre(round((t - first) / size) + before) for t in starts], width


def drawdown_chart(series: DrawdownSeries) -> Chart:
    """Max drawdown of every filtered session (the worst per day or week when many)."""
    bars = series.bars
    chart = Chart(title=_BUCKET_TITLES[series.bucket], unit="Drawdown in %", empty=not bars)
    if series.bucket != "session":
        chart.zone, chart.zone_follows = ZONE_UTC_DAYS, False
    if chart.empty:
        return chart
    percents = [bar.value * 100 for bar in bars]
    scale = _value_scale(percents)
    if scale is None:
        return _out_of_range(chart)
    low, high, _ = scale
    _y_axis(chart, scale, lambda v, step: f"{fmt_compact(v, step)} %")
    centres, bar_width = _drawdown_layout(chart, series)
    for bar, pct, centre in zip(bars, percents, centres, strict=True):
        y = _y_of(pct, low, high, chart)
        iso = time_text = ""
        if series.bucket == "session":
            iso, time_text = fmt_iso(bar.end), _utc_text(bar.end)
            title = f"{bar.session_id} · {time_text}: {fmt_pct(bar.value)}"
        else:
            when = f"{fmt_date(bar.start)} (UTC)"
            if series.bucket == "week":
                when = f"Woche ab {when}"
            title = (
                f"{when}: schlechtester {fmt_pct(bar.value)} ({bar.session_id}),"
                f" {fmt_count(bar.sessions)} Session(s)"
            )
        chart.bars.append(
            Bar(
                x=round(centre - bar_width / 2, 2),
                y=min(y, chart.zero_y),
                width=round(bar_width, 2),
                height=round(abs(chart.zero_y - y), 2),
                title=title,
                css="bar-dd",
                iso=iso,
                time_text=time_text,
            )
        )
    return chart


# --- PnL per day --------------------------------------------------------------


def daily_charts(series: Sequence[DailyPnl]) -> list[Chart]:
    """PnL per day of the last 30 days: one chart per currency, real and simulated
    money as separate bars side by side (never added)."""
    colours = _currency_order([s.currency for s in series])
    return [
        _daily_chart(currency, items, colours[currency])
        for currency, items in _by_currency(series, attrgetter("currency"))
    ]


def _daily_chart(currency: str, items: Sequence[DailyPnl], colour: int) -> Chart:
    chart = Chart(
        title=f"PnL je Tag · {currency or '¤'} (30 Tage)",
        unit=f"Realized PnL in {currency or 'unbekannter Währung'}",
        empty=False,
        zone=ZONE_UTC_DAYS,
        zone_follows=False,
    )
    days: list[date] = [d.day for d in items[0].days]
    values = [d.realized_pnl for item in items for d in item.days]
    scale = _value_scale(values)
    if scale is None:
        return _out_of_range(chart)
    low, high, _ = scale
    _y_axis(chart, scale, fmt_compact)
    slot = (chart.plot_right - chart.plot_left) / len(days)
    group = min(max(slot * 0.8, 1.0), MAX_BAR_WIDTH)
    bar_width = group / len(items)
    for k, item in enumerate(items):
        css = _series_css(colour, item.real_money)
        label = series_label(item.real_money, item.currency)
        chart.legend.append(LegendEntry(css, label))
        for i, day in enumerate(item.days):
            if day.sessions == 0:
                continue
            y = _y_of(day.realized_pnl, low, high, chart)
            chart.bars.append(
                Bar(
                    x=round(chart.plot_left + i * slot + (slot - group) / 2 + k * bar_width, 2),
                    y=min(y, chart.zero_y),
                    width=round(max(bar_width - 0.5, 0.8), 2),
                    # A day that closed flat still shows a hairline to hover.
                    height=max(round(abs(chart.zero_y - y), 2), 1.0),
                    title=(
                        f"{day.day:%d.%m.%Y} (UTC) · {label}: "
                        f"{fmt_money(day.realized_pnl, item.currency)}"
                        f" ({fmt_count(day.sessions)} Session(s))"
                    ),
                    css=f"{css} {'bar-pos' if day.realized_pnl >= 0 else 'bar-neg'}",
                )
            )
    moments = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) for d in days]
    _time_ticks(chart, moments, _slot_centre(chart, slot), instants=False)
    return chart
