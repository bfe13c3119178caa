"""The totals row over many rows (computed column by column) against a row-by-row reference."""
from __future__ import annotations

import random

from calltracking.reports import figures, queries


def test_totals_of_thousands_of_rows_match_the_row_by_row_sums():
    rnd = random.Random(5)
    rows = []
    for i in range(3000):
        calls = rnd.randrange(1, 500)
        ans = rnd.randrange(0, calls + 1)
        spend = round(rnd.uniform(1, 900), 2) if rnd.random() < 0.3 else None
        rows.append([str(i), f"kw {i}", calls, ans, calls - ans, rnd.randrange(calls + 1), 0,
                     round(rnd.uniform(1, 60), 1), round(rnd.uniform(5, 600), 1) if ans else None,
                     rnd.randrange(3), round(rnd.uniform(0, 5000), 2) if rnd.random() < 0.2 else None,
                     spend, None, None, rnd.randrange(calls + 1), None])
    tot = dict(zip(queries.ATTR_COLUMNS, figures.totals("keywords", queries.ATTR_COLUMNS, rows)))
    calls = sum(r[2] for r in rows)
    assert (tot["calls"], tot["answered"], tot["missed"]) == (calls, sum(r[3] for r in rows), sum(r[4] for r in rows))
    assert isinstance(tot["calls"], int)
    assert tot["avg_wait"] == round(sum(r[7] * r[2] for r in rows) / calls, 1)
    talk = [(r[8], r[3]) for r in rows if r[8] is not None]
    assert tot["avg_talk"] == round(sum(a * b for a, b in talk) / sum(b for _, b in talk), 1)
    assert tot["value"] == round(sum(r[10] for r in rows if r[10] is not None), 2)
    spend = sum(r[11] for r in rows if r[11] is not None)
    assert tot["spend"] == round(spend, 2) and tot["cost_per_call"] == round(spend / calls, 2)
    targets = sum(r[14] for r in rows)
    assert tot["targets"] == targets and tot["cost_per_target"] == round(spend / targets, 2)
    assert tot["key"] is None and tot["name"] is None
