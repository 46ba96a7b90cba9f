"""Chart time axes (issue 13 items 6 and 8): at least four dated ticks even for two
sessions, distinct labels, every instant carried for the page's UTC / Lokal switch;
and durations short enough for a table cell (item 7)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from src.webui.charts import (
    AXIS_CHAR_WIDTH,
    TOO_FEW_POINTS,
    Chart,
    daily_charts,
    drawdown_chart,
    pnl_charts,
)
from src.webui.formatting import fmt_duration
from src.webui.session_profit import DailyPnl, DayPnl
from src.webui.session_stats import ChartPoint, DrawdownBar, DrawdownSeries, PnlLine

T0 = datetime(2026, 11, 25, 3, 48, tzinfo=timezone.utc)
DATE_TICK = re.compile(r"^\d\d\.\d\d\.$")


def session_bars(*minutes: float) -> DrawdownSeries:
    return DrawdownSeries(
        bucket="session",
        bars=[
            DrawdownBar(
                start=T0 + timedelta(minutes=m),
                end=T0 + timedelta(minutes=m),
                value=0.01 * (i + 1),
                sessions=1,
                session_id=f"s{i}",
            )
            for i, m in enumerate(minutes)
        ],
    )


def day_bars(bucket: str, *days: int) -> DrawdownSeries:
    size = 7 if bucket == "week" else 1
    midnight = T0.replace(hour=0, minute=0)
    return DrawdownSeries(
        bucket=bucket,  # type: ignore[arg-type]
        bars=[
            DrawdownBar(
                start=midnight + timedelta(days=d * size),
                end=midnight + timedelta(days=(d + 1) * size, seconds=-1),
                value=0.02,
                sessions=3,
                session_id=f"s{d}",
            )
            for d in days
        ],
    )


def labels(chart: Chart) -> list[str]:
    return [f"{x.text} {x.sub}".strip() for x in chart.x_labels]


def assert_ticks_inside(chart: Chart) -> None:
    xs = [x.at for x in chart.x_labels]
    assert xs == sorted(xs) and len(set(xs)) == len(xs), xs
    assert chart.plot_left - 0.01 <= xs[0] and xs[-1] <= chart.plot_right + 0.01, xs


@pytest.mark.parametrize("minutes", [(0,), (0, 0), (0, 3), (0, 1, 600)])
def test_few_sessions_still_get_four_distinct_dated_ticks(minutes: tuple[float, ...]) -> None:
    chart = drawdown_chart(session_bars(*minutes))
    shown = labels(chart)
    assert len(shown) >= 4, shown
    assert len(set(shown)) == len(shown), f"ticks repeat: {shown}"
    assert all(DATE_TICK.match(x.text) and re.match(r"^\d\d:\d\d$", x.sub) for x in chart.x_labels)
    assert_ticks_inside(chart)
    # Every bar is drawn inside the plot, none hides another.
    rects = sorted((bar.x, bar.x + bar.width) for bar in chart.bars)
    assert len(rects) == len(minutes)
    assert rects[0][0] >= chart.plot_left and rects[-1][1] <= chart.plot_right, rects
    assert all(a[1] <= b[0] for a, b in zip(rects, rects[1:], strict=False)), rects


def test_a_session_bar_stands_at_its_time_between_the_ticks() -> None:
    chart = drawdown_chart(session_bars(0, 120))  # two hours apart
    first_tick, last_tick = chart.x_labels[0], chart.x_labels[-1]
    t0 = datetime.fromisoformat(first_tick.iso).timestamp()
    t1 = datetime.fromisoformat(last_tick.iso).timestamp()

    def x_at(moment: datetime) -> float:
        share = (moment.timestamp() - t0) / (t1 - t0)
        return first_tick.at + share * (last_tick.at - first_tick.at)

    assert len(chart.x_labels) == 5
    for bar, minutes in zip(chart.bars, (0, 120), strict=True):
        centre = bar.x + bar.width / 2
        assert centre == pytest.approx(x_at(T0 + timedelta(minutes=minutes)), abs=0.05)
    # The middle tick is halfway between the two sessions.
    assert (chart.x_labels[2].text, chart.x_labels[2].sub) == ("25.11.", "04:48")


@pytest.mark.parametrize(("bucket", "days"), [("day", (0,)), ("day", (0, 2)), ("week", (0, 1))])
def test_few_day_or_week_buckets_are_ticked_by_their_dates(
    bucket: str, days: tuple[int, ...]
) -> None:
    chart = drawdown_chart(day_bars(bucket, *days))
    shown = labels(chart)
    assert len(shown) >= 4 and len(set(shown)) == len(shown), shown
    assert all(DATE_TICK.match(x) for x in shown), shown  # a UTC day has no time of day
    assert "25.11." in shown
    assert_ticks_inside(chart)
    # Buckets are UTC days: the switch leaves them alone, and the chart says so.
    assert all(x.iso == "" for x in chart.x_labels)
    assert (chart.zone, chart.zone_follows) == ("Tage in UTC", False)
    assert all("(UTC)" in bar.title and bar.iso == "" for bar in chart.bars)
    # The bar of 25.11. stands on the tick of 25.11.
    tick = next(x.at for x in chart.x_labels if x.text == "25.11.")
    bar = chart.bars[0]
    assert bar.x + bar.width / 2 == pytest.approx(tick, abs=0.05)


def test_pnl_chart_of_two_sessions_a_minute_apart_has_distinct_ticks() -> None:
    line = PnlLine(
        real_money=False,
        currency="USDT",
        points=[
            ChartPoint(at=T0, value=5.0, session_id="a"),
            ChartPoint(at=T0 + timedelta(minutes=1), value=-2.0, session_id="b"),
        ],
    )
    (chart,) = pnl_charts([line])
    shown = labels(chart)
    assert len(shown) >= 4 and len(set(shown)) == len(shown), shown
    assert_ticks_inside(chart)
    xs = [dot.x for dot in chart.lines[0].dots]
    assert chart.plot_left < xs[0] < xs[1] < chart.plot_right


def test_instants_carry_their_iso_time_and_utc_text_for_the_switch() -> None:
    line = PnlLine(
        real_money=True,
        currency="EUR",
        points=[
            ChartPoint(at=T0, value=5.0, session_id="a"),
            ChartPoint(at=T0 + timedelta(hours=5), value=7.0, session_id="b"),
        ],
    )
    (chart,) = pnl_charts([line])
    assert (chart.zone, chart.zone_follows) == ("Zeit: UTC", True)
    dot = chart.lines[0].dots[0]
    assert dot.iso == "2026-11-25T03:48:00+00:00"
    assert dot.time_text == "25.11.2026 03:48 UTC"
    assert dot.title.startswith("25.11.2026 03:48 UTC · Echtgeld · EUR: +5,00 EUR")
    first = chart.x_labels[0]
    assert (first.iso, first.text, first.sub) == ("2026-11-25T03:48:00+00:00", "25.11.", "03:48")
    bar = drawdown_chart(session_bars(0)).bars[0]
    assert bar.iso == "2026-11-25T03:48:00+00:00" and bar.time_text in bar.title


def test_daily_pnl_days_stay_utc_days() -> None:
    days = [
        DayPnl(day=(T0 - timedelta(days=29 - i)).date(), realized_pnl=1.0, sessions=1)
        for i in range(30)
    ]
    chart = daily_charts([DailyPnl(real_money=False, currency="USDT", days=days)])[0]
    assert (chart.zone, chart.zone_follows) == ("Tage in UTC", False)
    assert len(chart.x_labels) >= 4 and all(x.iso == "" and x.sub == "" for x in chart.x_labels)
    assert chart.bars[-1].title.startswith("25.11.2026 (UTC) · Simuliert · USDT")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (51, "51 s"),
        (20 * 60 + 18, "20 min"),  # seconds no longer count once minutes are shown
        (3 * 3600 + 12 * 60 + 59, "3 h 12 min"),
        (2 * 86400 + 4 * 3600 + 7, "2 d 4 h"),
        (-90, "−1 min"),
    ],
)
def test_durations_show_their_two_largest_units(seconds: float, expected: str) -> None:
    assert fmt_duration(seconds) == expected


def test_two_sessions_in_two_currencies_still_make_pnl_charts() -> None:
    lines = [
        PnlLine(
            real_money=True, currency="EUR", points=[ChartPoint(at=T0, value=-7.5, session_id="a")]
        ),
        PnlLine(
            real_money=False,
            currency="USDT",
            points=[ChartPoint(at=T0 + timedelta(hours=3), value=12.5, session_id="b")],
        ),
    ]
    charts = pnl_charts(lines)
    assert [c.title.split(" · ")[1] for c in charts] == ["EUR", "USDT"]
    assert not any(chart.empty for chart in charts)
    assert [len(line.dots) for chart in charts for line in chart.lines] == [1, 1]
    # One time axis for both: each session stands at its time, the same in both charts.
    assert labels(charts[0]) == labels(charts[1]) and len(charts[0].x_labels) >= 4
    assert charts[0].lines[0].dots[0].x < charts[1].lines[0].dots[0].x
    (alone,) = pnl_charts(lines[:1])
    assert alone.empty and alone.note == TOO_FEW_POINTS  # one session alone is no chart


def test_a_currency_has_the_same_colour_in_every_chart() -> None:
    """EUR is not blue in one chart and amber in the next because BTC is missing there."""
    at = [T0, T0 + timedelta(hours=1)]
    lines = [
        PnlLine(
            real_money=True,
            currency=currency,
            points=[ChartPoint(at=t, value=1.0, session_id=currency) for t in at],
        )
        for currency in ("BTC", "EUR", "USDT")
    ]
    days = [
        DayPnl(day=T0.date() - timedelta(days=i), realized_pnl=1.0, sessions=1) for i in range(30)
    ]
    daily = daily_charts(
        [DailyPnl(real_money=True, currency=c, days=days[::-1]) for c in ("EUR", "USDT")]
    )
    in_pnl = {line.label: line.css for chart in pnl_charts(lines) for line in chart.lines}
    in_daily = {chart.legend[0].label: chart.legend[0].css for chart in daily}
    assert in_daily == {label: in_pnl[label] for label in in_daily}
    assert len(set(in_pnl.values())) == 3


def _label_spans(chart: Chart) -> list[tuple[float, float]]:
    """Where each tick label lies, estimated as the chart sizes its margins (phone text)."""
    spans = []
    for x in chart.x_labels:
        width = max(len(x.text), len(x.sub)) * AXIS_CHAR_WIDTH
        left = {"start": x.at, "middle": x.at - width / 2, "end": x.at - width}[x.anchor]
        spans.append((left, left + width))
    return spans


@pytest.mark.parametrize("count", [*range(4, 13), 20, 40])
def test_tick_labels_never_overlap_nor_leave_the_chart(count: int) -> None:
    for chart in (
        drawdown_chart(session_bars(*(i * 30 for i in range(count)))),
        drawdown_chart(day_bars("day", *range(count))),
    ):
        spans = _label_spans(chart)
        assert len(spans) >= 4, spans
        assert spans[0][0] >= 0 and spans[-1][1] <= chart.width, spans
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans


@pytest.mark.parametrize(
    "moments",
    [
        [
            datetime(1, 1, 1, tzinfo=timezone.utc),
            datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc),
        ],
        [datetime(1, 1, 1, tzinfo=timezone.utc)],
        [datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc)],
    ],
)
def test_records_at_the_ends_of_time_still_draw(moments: list[datetime]) -> None:
    """Writers' clocks can say year 1 or 9999: padding the axis must not leave the calendar."""
    bars = [
        DrawdownBar(start=m, end=m, value=0.1, sessions=1, session_id=f"s{i}")
        for i, m in enumerate(moments)
    ]
    assert len(drawdown_chart(DrawdownSeries(bucket="session", bars=bars)).x_labels) >= 2
    days = [
        DrawdownBar(start=m.replace(hour=0, minute=0), end=m, value=0.1, sessions=1, session_id="d")
        for m in moments
    ]
    assert drawdown_chart(DrawdownSeries(bucket="day", bars=days)).x_labels
    points = [ChartPoint(at=m, value=1.0, session_id="p") for m in moments]
    if len(points) >= 2:
        (chart,) = pnl_charts([PnlLine(real_money=False, currency="USDT", points=points)])
        assert chart.x_labels
