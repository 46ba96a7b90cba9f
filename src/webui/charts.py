"""SVG geometry for the server-rendered charts (presentation only).

The service returns chart series as data; this module turns them into
coordinates and labels that ``_charts.html`` draws, so charts need no script
and read without hovering: axes with units, a zero line, the last value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from src.experiments.live_session_record import utc_instant
from src.webui.session_stats import ChartPoint

WIDTH, HEIGHT = 420, 210
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 18, 26
MAX_BAR_WIDTH = 28.0
# The last value sits right of its dot, in a margin sized for it (bold 12px,
# about 8 px per character; generous, a cut-off number is worse than a gap).
LABEL_GAP = 6.0
LABEL_CHAR_WIDTH = 8.0
MAX_LABEL_MARGIN = 120.0
TOO_FEW_POINTS = "Noch nicht genug Daten für dieses Diagramm."
OUT_OF_RANGE = "Die Werte sind zu groß für dieses Diagramm."


@dataclass(frozen=True)
class AxisLabel:
    at: float
    text: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass
class Chart:
    """Everything the template needs to draw one chart."""

    title: str
    unit: str
    empty: bool
    note: str = TOO_FEW_POINTS
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: float = LEFT
    plot_right: float = WIDTH - RIGHT
    plot_top: float = TOP
    plot_bottom: float = HEIGHT - BOTTOM
    zero_y: float = 0.0
    path: str = ""
    last: tuple[float, float, str] | None = None
    last_positive: bool = True
    bars: list[Bar] = field(default_factory=list)
    y_labels: list[AxisLabel] = field(default_factory=list)
    x_labels: list[AxisLabel] = field(default_factory=list)


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)


def _value_scale(values: list[float]) -> tuple[float, float] | None:
    """Axis bounds on whole steps; None when the values cannot be drawn (not finite)."""
    low, high = min(0.0, *values), max(0.0, *values)
    if not math.isfinite(high - low):
        return None
    if high == low:
        high = low + 1.0
    step = _nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    return (low, high) if math.isfinite(high - low) else None


def _out_of_range(chart: Chart) -> Chart:
    chart.empty, chart.note = True, OUT_OF_RANGE
    return chart


def _y_of(value: float, low: float, high: float, chart: Chart) -> float:
    span = chart.plot_bottom - chart.plot_top
    return round(chart.plot_bottom - (value - low) / (high - low) * span, 2)


def _y_axis(low: float, high: float, chart: Chart, unit: str = "") -> list[AxisLabel]:
    step = _nice_step(high - low)
    count = round((high - low) / step)
    # As many decimals as the step needs: a 2.5 step must not read "2 %", "5 %", "8 %".
    decimals = next((d for d in range(12) if abs(round(step, d) - step) <= 1e-9 * step), 12)
    labels = []
    for i in range(count + 1):
        value = low + i * step
        text = "0" if round(value, decimals) == 0 else f"{value:,.{decimals}f}".replace("-", "−")
        labels.append(AxisLabel(_y_of(value, low, high, chart), text + unit))
    return labels


def _leave_room_for(chart: Chart, label: str) -> None:
    """Narrow the plot so the last-value label fits right of the last point."""
    needed = LABEL_GAP + len(label) * LABEL_CHAR_WIDTH
    chart.plot_right = chart.width - min(max(RIGHT, needed), MAX_LABEL_MARGIN)


def _money(value: float) -> str:
    return f"{value:+,.2f}".replace("-", "−")


def _date(moment: datetime) -> str:
    return utc_instant(moment).strftime("%d.%m. %H:%M")


def pnl_chart(points: list[ChartPoint]) -> Chart:
    """Cumulative realized PnL over session end time."""
    chart = Chart(
        title="Kumulierter Realized PnL", unit="PnL (Quote-Währung)", empty=len(points) < 2
    )
    if chart.empty:
        return chart
    values = [p.value for p in points]
    scale = _value_scale(values)
    if scale is None:
        return _out_of_range(chart)
    low, high = scale
    _leave_room_for(chart, _money(values[-1]))
    times = [utc_instant(p.at).timestamp() for p in points]
    first, span = times[0], (times[-1] - times[0]) or 1.0
    width = chart.plot_right - chart.plot_left

    def x_of(t: float) -> float:
        return round(chart.plot_left + (t - first) / span * width, 2)

    coords = [(x_of(t), _y_of(v, low, high, chart)) for t, v in zip(times, values, strict=True)]
    chart.path = "M" + " L".join(f"{x},{y}" for x, y in coords)
    chart.zero_y = _y_of(0.0, low, high, chart)
    chart.last = (*coords[-1], _money(values[-1]))
    chart.last_positive = values[-1] >= 0
    chart.y_labels = _y_axis(low, high, chart)
    chart.x_labels = [
        AxisLabel(chart.plot_left, _date(points[0].at)),
        AxisLabel(chart.plot_right, _date(points[-1].at)),
    ]
    return chart


def drawdown_chart(points: list[ChartPoint]) -> Chart:
    """Max drawdown per session, oldest left, as bars hanging from zero."""
    chart = Chart(title="Max Drawdown je Session", unit="Drawdown (%)", empty=not points)
    if chart.empty:
        return chart
    percents = [p.value * 100 for p in points]
    scale = _value_scale(percents)
    if scale is None:
        return _out_of_range(chart)
    low, high = scale
    _leave_room_for(chart, f"{percents[-1]:.2f} %")
    chart.zero_y = _y_of(0.0, low, high, chart)
    slot = (chart.plot_right - chart.plot_left) / len(points)
    # A few sessions should still look like bars, not like one block.
    bar_width = min(max(slot * 0.7, 1.0), MAX_BAR_WIDTH)
    for i, (point, pct) in enumerate(zip(points, percents, strict=True)):
        y = _y_of(pct, low, high, chart)
        chart.bars.append(
            Bar(
                x=round(chart.plot_left + i * slot + (slot - bar_width) / 2, 2),
                y=min(y, chart.zero_y),
                width=round(bar_width, 2),
                height=round(abs(chart.zero_y - y), 2),
                title=f"{point.session_id}: {pct:.2f} %",
            )
        )
    last = chart.bars[-1]
    chart.last = (round(last.x + last.width, 2), last.y, f"{percents[-1]:.2f} %")
    chart.y_labels = _y_axis(low, high, chart, " %")
    chart.x_labels = [
        AxisLabel(chart.plot_left, _date(points[0].at)),
        AxisLabel(chart.plot_right, _date(points[-1].at)),
    ]
    return chart
