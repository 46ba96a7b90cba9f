"""The cumulative PnL chart per currency: each currency on its own value axis in
its own decimals, so a BTC line of 0,00x is not drawn flat under USDT thousands."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.webui.app import create_app
from src.webui.charts import Chart, Line, pnl_charts
from src.webui.session_stats import ChartPoint, PnlLine
from src.webui.settings import Settings
from tests.test_session_stats import ended, heads_of

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
GERMAN_BTC_TICK = re.compile(r"^(0|−?0,\d{1,6})$")


def line(real_money: bool, currency: str, *values: float, hours: int = 6) -> PnlLine:
    """A cumulative line: one point every ``hours``, from T0 on."""
    return PnlLine(
        real_money=real_money,
        currency=currency,
        points=[
            ChartPoint(at=T0 + timedelta(hours=hours * i), value=v, session_id=f"{currency}{i}")
            for i, v in enumerate(values)
        ],
    )


def usdt_and_btc() -> list[PnlLine]:
    """A trader's week: USDT in the thousands (real and simulated), BTC in 0,00x."""
    return [
        line(True, "BTC", 0.0004, 0.0011, 0.0009, 0.0021, hours=30),
        line(True, "USDT", 120.0, 850.0, 1400.0, 2650.0, 3100.0),
        line(False, "USDT", -300.0, 900.0, 4200.0, 6900.0, 7600.0),
    ]


def by_title(charts: Sequence[Chart]) -> dict[str, Chart]:
    return {chart.title.split(" · ")[1]: chart for chart in charts}


def height_share(chart: Chart, drawn: Line) -> float:
    """How much of the plot's height the line spans, from its lowest to its highest point."""
    ys = [dot.y for dot in drawn.dots]
    return (max(ys) - min(ys)) / (chart.plot_bottom - chart.plot_top)


def test_usdt_and_btc_get_a_chart_each_with_its_own_axis() -> None:
    charts = pnl_charts(usdt_and_btc())

    assert [c.title for c in charts] == [
        "Kumulierter Realized PnL · BTC",
        "Kumulierter Realized PnL · USDT",
    ]
    btc, usdt = charts
    assert btc.unit == "Realized PnL in BTC" and usdt.unit == "Realized PnL in USDT"
    btc_ticks = [label.text for label in btc.y_labels]
    assert btc_ticks == ["0", "0,001", "0,002", "0,003"], btc_ticks
    assert [label.text for label in usdt.y_labels] == [
        "−2 Tsd.", "0", "2 Tsd.", "4 Tsd.", "6 Tsd.", "8 Tsd.",
    ]  # fmt: skip
    # The BTC line spans its chart instead of lying flat on zero.
    (btc_line,) = btc.lines
    assert height_share(btc, btc_line) > 0.5
    assert max(height_share(usdt, drawn) for drawn in usdt.lines) > 0.5
    # Every point lies inside its own plot.
    for chart in charts:
        for dot in (d for drawn in chart.lines for d in drawn.dots):
            assert chart.plot_top <= dot.y <= chart.plot_bottom, (chart.title, dot)


def test_the_charts_share_one_time_axis() -> None:
    btc, usdt = pnl_charts(usdt_and_btc())

    assert [(x.iso, x.text, x.sub) for x in btc.x_labels] == [
        (x.iso, x.text, x.sub) for x in usdt.x_labels
    ]
    # BTC's last session (90 h after T0) stands right of USDT's last (24 h after T0).
    assert btc.lines[0].dots[-1].x > usdt.lines[0].dots[-1].x
    assert btc.lines[0].dots[-1].title == "24.11.2026 02:00 UTC · Echtgeld · BTC: +0,002100 BTC"


def test_real_and_simulated_money_stay_two_lines_in_their_currencys_colour() -> None:
    _, usdt = pnl_charts(usdt_and_btc())

    assert [(d.label, d.value) for d in usdt.lines] == [
        ("Echtgeld · USDT", "+3.100,00 USDT"),
        ("Simuliert · USDT", "+7.600,00 USDT"),
    ]
    real, simulated = usdt.lines
    assert [len(real.dots), len(simulated.dots)] == [5, 5]  # never added together
    assert real.css == "series-0" and simulated.css == "series-0 series-sim"
    assert [e.label for e in usdt.legend] == ["Echtgeld · USDT", "Simuliert · USDT"]


@pytest.mark.parametrize(
    ("currency", "values", "ticks"),
    [
        # Satoshis: six decimals, no two ticks alike.
        ("BTC", (0.000003, 0.000012), ["0", "0,000005", "0,000010", "0,000015"]),
        ("BTC", (-0.0042, -0.0013), ["−0,006", "−0,004", "−0,002", "0"]),
        # Under a cent: the axis steps in cents, USDT's smallest unit.
        ("USDT", (0.001, 0.004), ["0", "0,01"]),
        ("EUR", (12.5, 40.0), ["0", "10", "20", "30", "40"]),
    ],
)
def test_value_ticks_are_in_the_currencys_decimals(
    currency: str, values: tuple[float, ...], ticks: list[str]
) -> None:
    (chart,) = pnl_charts([line(True, currency, *values)])

    assert [label.text for label in chart.y_labels] == ticks
    if currency == "BTC":
        assert all(GERMAN_BTC_TICK.match(text) for text in ticks)


def test_one_currency_is_one_chart_as_before() -> None:
    charts = pnl_charts([line(True, "USDT", 5.0, 8.0), line(False, "USDT", -1.0, 3.0)])

    assert len(charts) == 1
    assert [d.label for d in charts[0].lines] == ["Echtgeld · USDT", "Simuliert · USDT"]


def test_no_priced_session_is_one_empty_chart() -> None:
    (chart,) = pnl_charts([])

    assert chart.empty and chart.title == "Kumulierter Realized PnL"


# --- Through HTTP: what the trader sees comes from what the API returns ----------

FIGURE = re.compile(
    r'<figure class="card chart chart-pnl">\s*<figcaption>(.*?)</figcaption>.*?</figure>', re.S
)


def pnl_figures(html: str) -> dict[str, str]:
    """The page's cumulative PnL charts by their caption."""
    return {match.group(1): match.group(0) for match in FIGURE.finditer(html)}


def test_page_draws_a_pnl_chart_per_currency_of_the_api_lines(tmp_path: Path) -> None:
    heads_of(
        tmp_path,
        ended("live-usdt", 0, mode="live", metrics={"realized_pnl": 1250.0}),
        ended("paper-usdt", 1, mode="paper", metrics={"realized_pnl": 3400.0}),
        ended("live-btc", 2, mode="live", symbol="ETH/BTC", metrics={"realized_pnl": 0.0012}),
        ended("paper-btc", 3, mode="paper", symbol="ETH/BTC", metrics={"realized_pnl": -0.0007}),
    )
    with TestClient(create_app(Settings(registry_dir=tmp_path, watch=False))) as client:
        html = client.get("/").text
        view = client.get("/api/live_track").json()

    assert {(line["real_money"], line["currency"]) for line in view["charts"]["pnl_lines"]} == {
        (True, "USDT"), (False, "USDT"), (True, "BTC"), (False, "BTC"),
    }  # fmt: skip
    figures = pnl_figures(html)
    assert list(figures) == ["Kumulierter Realized PnL · BTC", "Kumulierter Realized PnL · USDT"]
    assert 'class="overview overview-currencies"' in html
    btc = figures["Kumulierter Realized PnL · BTC"]
    assert "Realized PnL in BTC" in btc and "Tsd." not in btc
    assert ">−0,0010</text>" in btc and ">0,0015</text>" in btc
    # A loss of 0,0007 BTC is a loss (red), not "flat" as at two decimals.
    assert 'Simuliert · BTC <strong class="pnl-neg">−0,000700 BTC</strong>' in btc
    assert "USDT" not in btc
    usdt = figures["Kumulierter Realized PnL · USDT"]
    assert ">2 Tsd.</text>" in usdt and "Simuliert · USDT <strong" in usdt and "BTC:" not in usdt


def test_page_with_one_currency_keeps_one_pnl_chart(tmp_path: Path) -> None:
    heads_of(
        tmp_path,
        ended("live-usdt", 0, mode="live", metrics={"realized_pnl": 12.5}),
        ended("paper-usdt", 1, mode="paper", metrics={"realized_pnl": -4.0}),
    )
    with TestClient(create_app(Settings(registry_dir=tmp_path, watch=False))) as client:
        html = client.get("/").text

    assert list(pnl_figures(html)) == ["Kumulierter Realized PnL · USDT"]
    assert '<div class="overview" data-part="overview">' in html
