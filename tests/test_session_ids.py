"""The index's tally of session ids that more than one file carries."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

from src.experiments.registry_files import file_stamp
from src.experiments.session_head import SessionHead, make_head
from src.experiments.session_ids import IdTally


class Clashing(str):
    """An id whose hash equals every other's, as a hash collision would."""

    def __hash__(self) -> int:
        return 7


def head(n: int, session_id: str) -> SessionHead:
    return make_head(
        file_name=f"f{n}.json",
        stamp=file_stamp(1, n),
        session_id=session_id,
        run_type="live_session_paper",
        mode="paper",
        env_name="",
        symbol="",
        status="completed",
        started_at=datetime(2026, 1, 1) + timedelta(minutes=n),
        finished_at=None,
        updated_at=None,
        realized_pnl=None,
        unrealized_pnl=None,
        max_drawdown=None,
        num_orders=None,
        report_path=None,
        error=None,
        currency="",
        strategy_name="",
        risk=None,
    )


def shared(heads: list[SessionHead]) -> dict[str, int]:
    counts = Counter(h.session_id for h in heads)
    return {sid: n for sid, n in counts.items() if n > 1}


def test_the_tally_follows_every_change_as_a_recount_would() -> None:
    rng = random.Random(3)
    for kind in (str, Clashing):
        ids = [kind(f"s{i}") for i in range(12)]  # few ids: many files share one
        heads = [head(n, rng.choice(ids)) for n in range(40)]
        tally = IdTally(heads)
        assert tally.duplicates == shared(heads)
        for n in range(40, 400):
            if heads and rng.random() < 0.45:
                gone = heads.pop(rng.randrange(len(heads)))
                tally.remove(gone)
            else:
                heads.append(head(n, rng.choice(ids)))
                tally.add(heads[-1], heads)
            assert tally.duplicates == shared(heads)
        assert IdTally(heads).duplicates == shared(heads)


def test_distinct_ids_with_equal_hashes_are_no_duplicates() -> None:
    heads = [head(1, Clashing("a")), head(2, Clashing("b"))]
    tally = IdTally(heads)
    heads.append(head(3, Clashing("c")))
    tally.add(heads[-1], heads)

    assert tally.duplicates == {}
