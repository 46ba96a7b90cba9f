"""SVG geometry for the server-rendered charts (presentation only).

The service returns chart series as data; this module turns them into
coordinates and German labels that ``_charts.html`` draws, so charts need no
script: axes with compact units (``1,5 Mio.``) in a margin sized for them, at
least four dated time ticks, a legend per kind of money and currency, and a
``<title>`` on every point and bar, so a hover shows its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from src.experiments.live_session_record import utc_instant
from src.webui.formatting import (
    fmt_compact,
    fmt_count,
    fmt_date,
    fmt_money,
    fmt_pct,
    fmt_time,
)
from src.webui.presentation import pnl_class
from src.webui.session_profit import DailyPnl
from src.webui.session_stats import DrawdownSeries, PnlLine
from src.webui.vocabulary import money_word

WIDTH, HEIGHT = 420, 220
RIGHT, TOP, BOTTOM = 14, 26, 34
# Axis text is 11 px; about 6.6 px per character, plus the gap to the plot.
AXIS_CHAR_WIDTH = 6.6
AXIS_GAP = 10.0
MIN_LEFT = 34.0
MAX_BAR_WIDTH = 28.0
TIME_TICKS = 5
SERIES_COLOURS = 6
TOO_FEW_POINTS = "Noch nicht genug Daten für dieses Diagramm."
OUT_OF_RANGE = "Die Werte sind zu groß für dieses Diagramm."


@dataclass(frozen=True)
class AxisLabel:
    at: float
    text: str
    sub: str = ""  # a second line (the time under a date)
    anchor: str = "middle"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str
    css: str = ""


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


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


def _value_scale(values: Sequence[float]) -> tuple[float, float, float] | None:
    """Axis bounds on whole steps and the step; None when not drawable (not finite)."""
    low, high = min(0.0, *values), max(0.0, *values)
    if not math.isfinite(high - low):
        return None
    if high == low:
        high = low + 1.0
    step = _nice_step(high - low)
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
    chart.plot_left = max(MIN_LEFT, AXIS_GAP + AXIS_CHAR_WIDTH * max(len(t) for t in texts))
    chart.y_labels = [
        AxisLabel(_y_of(value, low, high, chart), label, anchor="end")
        for value, label in zip(values, texts, strict=True)
    ]
    chart.zero_y = _y_of(0.0, low, high, chart)


def _tick_text(moment: datetime, span_seconds: float) -> tuple[str, str]:
    """A date, and under it the time when the chart spans less than a few days."""
    instant = utc_instant(moment)
    return instant.strftime("%d.%m."), instant.strftime("%H:%M") if span_seconds < 4 * 86400 else ""


def _time_ticks(
    chart: Chart, moments: Sequence[datetime], position: Callable[[int], float]
) -> None:
    """At least four (five) labelled ticks with dates, spread over the series."""
    count = len(moments)
    if count == 0:
        return
    chosen = sorted({round(i * (count - 1) / (TIME_TICKS - 1)) for i in range(TIME_TICKS)})
    span = (utc_instant(moments[-1]) - utc_instant(moments[0])).total_seconds()
    labels = []
    for n, i in enumerate(chosen):
        text, sub = _tick_text(moments[i], span)
        anchor = "start" if n == 0 else "end" if n == len(chosen) - 1 else "middle"
        labels.append(AxisLabel(position(i), text, sub, anchor))
    chart.x_labels = labels


def _series_css(index: int, real_money: bool) -> str:
    return f"series-{index % SERIES_COLOURS}" + ("" if real_money else " series-sim")


def _currency_order(currencies: Sequence[str]) -> dict[str, int]:
    """One colour per currency, the same in every chart."""
    return {currency: i for i, currency in enumerate(sorted(set(currencies)))}


def series_label(real_money: bool, currency: str) -> str:
    return f"{money_word(real_money)} · {currency or '¤'}"


# --- Cumulative PnL -------------------------------------------------------------


def pnl_chart(lines: Sequence[PnlLine]) -> Chart:
    """Cumulative realized PnL over time: one line per kind of money and currency."""
    chart = Chart(
        title="Kumulierter Realized PnL",
        unit="je Geldart und Währung",
        empty=not any(len(line.points) >= 2 for line in lines),
    )
    if chart.empty:
        return chart
    scale = _value_scale([p.value for line in lines for p in line.points])
    if scale is None:
        return _out_of_range(chart)
    low, high, _ = scale
    _y_axis(chart, scale, fmt_compact)
    times = sorted(utc_instant(p.at).timestamp() for line in lines for p in line.points)
    first, span = times[0], (times[-1] - times[0]) or 1.0
    width = chart.plot_right - chart.plot_left

    def x_of(t: float) -> float:
        return round(chart.plot_left + (t - first) / span * width, 2)

    colours = _currency_order([line.currency for line in lines])
    for line in lines:
        if not line.points:
            continue
        coords = [
            (x_of(utc_instant(p.at).timestamp()), _y_of(p.value, low, high, chart))
            for p in line.points
        ]
        css = _series_css(colours[line.currency], line.real_money)
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
                    Dot(x, y, f"{fmt_time(p.at)} · {label}: {fmt_money(p.value, line.currency)}")
                    for (x, y), p in zip(coords, line.points, strict=True)
                ],
            )
        )
        chart.legend.append(
            LegendEntry(css, label, fmt_money(last, line.currency), pnl_class(last))
        )
    ticks = [
        datetime.fromtimestamp(first + span * i / (TIME_TICKS - 1), timezone.utc)
        for i in range(TIME_TICKS)
    ]
    _time_ticks(chart, ticks, lambda i: x_of(first + span * i / (TIME_TICKS - 1)))
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


def drawdown_chart(series: DrawdownSeries) -> Chart:
    """Max drawdown of every filtered session (the worst per day or week when many)."""
    bars = series.bars
    chart = Chart(title=_BUCKET_TITLES[series.bucket], unit="Drawdown in %", empty=not bars)
    if chart.empty:
        return chart
    percents = [bar.value * 100 for bar in bars]
    scale = _value_scale(percents)
    if scale is None:
        return _out_of_range(chart)
    low, high, _ = scale
    _y_axis(chart, scale, lambda v, step: f"{fmt_compact(v, step)} %")
    slot, bar_width = _bar_slots(chart, len(bars))
    for i, (bar, pct) in enumerate(zip(bars, percents, strict=True)):
        y = _y_of(pct, low, high, chart)
        if series.bucket == "session":
            title = f"{bar.session_id} · {fmt_time(bar.end)}: {fmt_pct(bar.value)}"
        else:
            when = fmt_date(bar.start)
            if series.bucket == "week":
                when = f"Woche ab {when}"
            title = (
                f"{when}: schlechtester {fmt_pct(bar.value)} ({bar.session_id}),"
                f" {fmt_count(bar.sessions)} Session(s)"
            )
        chart.bars.append(
            Bar(
                x=round(chart.plot_left + i * slot + (slot - bar_width) / 2, 2),
                y=min(y, chart.zero_y),
                width=round(bar_width, 2),
                height=round(abs(chart.zero_y - y), 2),
                title=title,
                css="bar-dd",
            )
        )
    _time_ticks(
        chart,
        [bar.start for bar in bars],
        lambda i: round(chart.plot_left + (i + 0.5) * slot, 2),
    )
    return chart


# --- PnL per day --------------------------------------------------------------


def daily_charts(series: Sequence[DailyPnl]) -> list[Chart]:
    """PnL per day of the last 30 days: one chart per currency, real and simulated
    money as separate bars side by side (never added)."""
    colours = _currency_order([s.currency for s in series])
    by_currency: dict[str, list[DailyPnl]] = {}
    for item in series:
        by_currency.setdefault(item.currency, []).append(item)
    return [
        _daily_chart(currency, items, colours[currency])
        for currency, items in sorted(by_currency.items(), key=lambda kv: (kv[0] == "", kv[0]))
    ]


def _daily_chart(currency: str, items: Sequence[DailyPnl], colour: int) -> Chart:
    chart = Chart(
        title=f"PnL je Tag · {currency or '¤'} (30 Tage)",
        unit=f"Realized PnL in {currency or 'unbekannter Währung'}",
        empty=False,
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
                        f"{day.day:%d.%m.%Y} · {label}: "
                        f"{fmt_money(day.realized_pnl, item.currency)}"
                        f" ({fmt_count(day.sessions)} Session(s))"
                    ),
                    css=f"{css} {'bar-pos' if day.realized_pnl >= 0 else 'bar-neg'}",
                )
            )
    moments = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) for d in days]
    _time_ticks(chart, moments, lambda i: round(chart.plot_left + (i + 0.5) * slot, 2))
    return chart
