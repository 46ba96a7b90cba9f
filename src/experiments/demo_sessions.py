"""Deterministic demo sessions, so the dashboard can be tried without a trading bot.

The same ``seed`` and ``now`` always give the same records. Records are built
lazily (``iter_demo_records``) so that writing 100,000 of them for a benchmark
never holds them all in memory.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run

MODES = ("shadow", "testnet", "paper", "live", "bounded_pilot")
STATUSES = ("started", "completed", "failed", "aborted")
_MODE_WEIGHTS = (33, 28, 24, 10, 5)

_LIVE_ENVS = ("kraken_spot", "binance_spot", "bybit_perp", "kraken_futures")
_ENVS_BY_MODE = {
    "shadow": _LIVE_ENVS,
    "testnet": ("kraken_futures_testnet", "bybit_perp_testnet", "binance_futures_testnet"),
    "paper": ("paper_broker", "kraken_spot", "binance_spot"),
    "live": _LIVE_ENVS,
    "bounded_pilot": ("kraken_spot", "kraken_futures"),
}
# Mixed quote currencies (USDT, EUR, USD, a little BTC), as a real desk trades them.
_SYMBOLS = (
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "XRP/USDT",
    "BTC/USDT:USDT",
    "BTC/EUR",
    "ETH/EUR",
    "BTC/USD",
    "ETH/USD",
    "ETH/BTC",
)
_SYMBOL_WEIGHTS = (24, 18, 10, 6, 6, 10, 5, 10, 6, 5)
_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h")
_STRATEGIES: dict[str, dict[str, Any]] = {
    "ma_crossover": {"fast_window": 20, "slow_window": 50, "ma_type": "ema"},
    "rsi_reversion": {"rsi_window": 14, "oversold": 30, "overbought": 70, "exit_rsi": 50},
    "donchian_breakout": {"entry_window": 55, "exit_window": 20, "atr_window": 14},
    "bollinger_squeeze": {"window": 20, "num_std": 2.0, "squeeze_quantile": 0.1},
    "vwap_momentum": {"vwap_window": 96, "min_deviation": 0.004, "cooldown_bars": 3},
}
_FAILURES = (
    "ExchangeError: {env} rejected order: insufficient margin",
    "NetworkError: {env} request timed out after 30s (GET /api/v3/order)",
    "RateLimitExceeded: {env} answered 429 Too Many Requests",
    "InvalidNonce: {env} nonce too small, clock drift suspected",
    "RiskLimitBreached: daily loss limit of 2.0% reached, trading halted",
    "KeyError: 'close' missing in OHLCV frame for {symbol}",
    "ConnectionResetError: websocket to {env} closed unexpectedly (code 1006)",
)
_ABORTS = (
    "KeyboardInterrupt: session interrupted by the operator",
    "SystemExit: exit code 1",
    "KillSwitch: max drawdown guard tripped, session stopped",
)
_HISTORY = timedelta(days=42)


def generate_demo_records(
    count: int, seed: int = 82, now: datetime | None = None
) -> list[LiveSessionRecord]:
    """Build ``count`` realistic sessions; every mode and status occurs once count >= 9."""
    return list(iter_demo_records(count, seed, now))


def write_demo_sessions(
    base_dir: str | os.PathLike[str] | None,
    count: int,
    seed: int = 82,
    now: datetime | None = None,
) -> list[Path]:
    """Write ``count`` demo sessions into the registry the way a bot would."""
    return [register_live_session_run(r, base_dir) for r in iter_demo_records(count, seed, now)]


def iter_demo_records(
    count: int, seed: int = 82, now: datetime | None = None
) -> Iterator[LiveSessionRecord]:
    """Yield the demo sessions one by one (see ``generate_demo_records``)."""
    rng = random.Random(seed)
    now = _naive_utc(now or datetime.now(timezone.utc))
    statuses = _status_plan(count, rng)
    used_ids: set[str] = set()
    for index, status in enumerate(statuses):
        mode = MODES[index] if index < len(MODES) else rng.choices(MODES, _MODE_WEIGHTS)[0]
        yield _demo_record(rng, now, mode, status, used_ids)


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _status_plan(count: int, rng: random.Random) -> list[str]:
    # One of each status first (completed first, so tiny counts stay mostly completed),
    # then roughly 12 % failed, 8 % aborted, a handful running, the rest completed.
    plan = ["completed", "failed", "aborted", "started"][: max(count, 0)]
    extra = {
        "failed": round(count * 0.12) - 1,
        "aborted": round(count * 0.08) - 1,
        "started": min(4, count // 25),
    }
    for status, number in extra.items():
        plan += [status] * max(0, min(number, count - len(plan)))
    plan += ["completed"] * (count - len(plan))
    rng.shuffle(plan)
    return plan


def _demo_record(
    rng: random.Random, now: datetime, mode: str, status: str, used_ids: set[str]
) -> LiveSessionRecord:
    env_name = rng.choice(_ENVS_BY_MODE[mode])
    symbol = rng.choices(_SYMBOLS, _SYMBOL_WEIGHTS)[0]
    strategy = rng.choice(tuple(_STRATEGIES))
    timeframe = rng.choice(_TIMEFRAMES)
    if status == "started":
        started_at = now - timedelta(seconds=rng.randint(60, 3300))
        finished_at = None
        updated_at = now - timedelta(seconds=rng.randint(1, 90))
        duration = now - started_at
    else:
        duration = timedelta(seconds=rng.randint(300, 8 * 3600))
        if status != "completed":
            duration = duration * rng.uniform(0.05, 0.6)
        duration = timedelta(seconds=int(duration.total_seconds()))
        # Ended at least five minutes ago, started at most six weeks ago.
        window = int((_HISTORY - duration - timedelta(minutes=5)).total_seconds())
        started_at = now - _HISTORY + timedelta(seconds=rng.randint(0, window))
        finished_at = started_at + duration
        updated_at = finished_at

    session_id = _unique_session_id(rng, started_at, mode, used_ids)
    error = None
    if status == "failed":
        error = rng.choice(_FAILURES).format(env=env_name, symbol=symbol)
    elif status == "aborted":
        error = rng.choice(_ABORTS)
    run_id = None if rng.random() < 0.3 else f"run_{started_at:%Y%m%d_%H%M%S}_{mode}"
    return LiveSessionRecord(
        session_id=session_id,
        run_id=run_id,
        run_type=f"live_session_{mode}",
        mode=mode,
        env_name=env_name,
        symbol=symbol,
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        config=_demo_config(rng, mode, env_name, symbol, strategy, timeframe),
        metrics=_demo_metrics(rng, status, duration, symbol.endswith("/BTC")),
        cli_args=[
            "python",
            "scripts/run_live_session.py",
            f"--mode={mode}",
            f"--env={env_name}",
            f"--symbol={symbol}",
            f"--strategy={strategy}",
            f"--timeframe={timeframe}",
            f"--config=config/live/{strategy}.toml",
        ],
        error=error,
        created_at=started_at,
        updated_at=updated_at,
    )


def _unique_session_id(
    rng: random.Random, started_at: datetime, mode: str, used_ids: set[str]
) -> str:
    while True:
        session_id = f"session_{started_at:%Y%m%d}_{mode}_{rng.getrandbits(24):06x}"
        if session_id not in used_ids:
            used_ids.add(session_id)
            return session_id


def _demo_config(
    rng: random.Random, mode: str, env_name: str, symbol: str, strategy: str, timeframe: str
) -> dict[str, Any]:
    base, quote = symbol.split(":")[0].split("/")
    risk_per_trade = rng.choice((0.0025, 0.005, 0.01, 0.015))
    return {
        "strategy_name": strategy,
        "strategy": {"name": strategy, "version": "1.4.2", "params": dict(_STRATEGIES[strategy])},
        "market": {
            "exchange": env_name,
            "symbol": symbol,
            "base_asset": base,
            "quote_asset": quote,
            "timeframe": timeframe,
            "warmup_bars": rng.choice((200, 300, 500)),
        },
        "risk": {
            "risk_per_trade": risk_per_trade,
            "max_position_fraction": rng.choice((0.1, 0.2, 0.25)),
            "max_open_positions": rng.randint(1, 3),
            "daily_loss_limit": 0.02,
            "max_drawdown_stop": 0.15,
            "leverage": 1 if mode in ("paper", "shadow") else rng.choice((1, 2, 3)),
        },
        "execution": {
            "order_type": rng.choice(("limit", "market")),
            "post_only": rng.random() < 0.5,
            "slippage_bps": rng.choice((2, 5, 10)),
            "fee_bps": rng.choice((2.0, 4.0, 7.5, 10.0)),
            "dry_run": mode in ("shadow", "paper"),
            "poll_interval_seconds": rng.choice((5, 10, 30)),
        },
        "session": {
            "mode": mode,
            "initial_capital": rng.choice((1000.0, 5000.0, 10000.0, 25000.0)),
            "currency": quote,
            "heartbeat_seconds": 10,
            "max_runtime_hours": 12,
            "notes": f"{strategy} on {symbol} ({timeframe}), {mode} run",
        },
    }


def _demo_metrics(
    rng: random.Random, status: str, duration: timedelta, in_btc: bool = False
) -> dict[str, Any]:
    hours = max(duration.total_seconds() / 3600, 0.05)
    num_orders = max(0, int(rng.gauss(6 * hours, 3 * hours)))
    num_trades = num_orders // 2 + rng.randint(0, num_orders % 2)
    wins = rng.randint(0, num_trades)
    drift = {"completed": 25.0, "failed": -40.0, "aborted": -10.0, "started": 5.0}[status]
    realized_pnl = round(rng.gauss(drift * hours, 90 * hours**0.5), 2)
    if in_btc:  # a BTC-quoted pair earns fractions of a bitcoin
        realized_pnl = round(realized_pnl / 60_000, 6)
    max_drawdown = round(min(rng.betavariate(1.6, 14.0), 0.25), 4)
    unrealized = round(rng.gauss(0, 40), 2) if status == "started" else 0.0
    return {
        "realized_pnl": realized_pnl,
        "unrealized_pnl": unrealized,
        "max_drawdown": max_drawdown,
        "num_orders": num_orders,
        "num_trades": num_trades,
        "win_rate": round(wins / num_trades, 3) if num_trades else None,
        "fees_paid": round(num_orders * rng.uniform(0.05, 0.6), 2),
        "exposure_fraction": round(rng.uniform(0.0, 0.6), 3),
    }
