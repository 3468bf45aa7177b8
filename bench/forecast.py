"""Time of the forecast on top of the release series, at 1,000 / 10,000 / 100,000 hazards.

For each size a synthetic programme (about 5 releases per hazard, clustered and overlapping) is
cut into its ledger once (``build_ledger``, the expensive geometric step, timed for reference),
then these are timed on that ledger:

* series: the 15-year yearly series (what every forecast starts from);
* forecast, yearly: a 10,000-draw bootstrap of yearly rates, 50-year horizon;
* forecast, monthly: a 10,000-draw bootstrap of monthly rates;
* capacity: a 10,000-draw capacity scenario with year-to-year variability;
* request: the extension-request figures and document (DOCX bytes, burn-down chart included).

Target (issue 5): the 10,000-draw bootstrap under 2 s on top of the series at 100,000 hazards.
Usage: ``python bench/forecast.py [--sizes 1000 10000 100000] [--draws 10000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


AS_OF = dt.date(2024, 12, 31)


def measure(n: int, draws: int) -> str:
    """One row of the table for a programme of ``n`` hazards."""
    from planner.accounting import build_ledger, period_ends
    from planner.documents.model import to_docx
    from planner.programme import Programme
    from planner.synthetic import SyntheticSpec, synthetic_programme
    from planner.treaty.extension import request_document, request_figures
    from planner.treaty.forecast import CapacityLine, Scenario, forecast, release_history

    spec = SyntheticSpec(n_hazards=n, seed=7)
    hazards, releases = synthetic_programme(spec)
    programme = Programme("bench", spec.eif, spec.crs, settings={"extensions": [{"years": 5}]})
    t_ledger, ledger = timed(lambda: build_ledger(hazards, releases, eif=programme.eif))
    t_series, _ = timed(lambda: ledger.series(period_ends(dt.date(2010, 1, 1), AS_OF)))
    t_year, f = timed(lambda: forecast(ledger, programme, Scenario(draws=draws), as_of=AS_OF))
    t_month, _ = timed(lambda: forecast(ledger, programme, Scenario(freq="month", draws=draws),
                                        as_of=AS_OF))
    cap = (CapacityLine("cleared", 10, 500, 200),)
    t_cap, _ = timed(lambda: forecast(ledger, programme, Scenario(
        capacity=cap, capacity_cv=0.2, draws=draws), as_of=AS_OF))

    def request() -> bytes:
        fig = request_figures(ledger, programme, f)
        return to_docx(request_document(fig, f, history=release_history(ledger, AS_OF)))

    t_req, _ = timed(request)
    return (f"{n:>8,} {len(releases):>9,} {t_ledger:>9.2f} {t_series:>9.3f} {t_year:>9.3f} "
            f"{t_month:>10.3f} {t_cap:>11.3f} {t_req:>10.3f}  {f.completion_p50}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--draws", type=int, default=10_000)
    args = parser.parse_args()
    header = (f"{'hazards':>8} {'releases':>9} {'ledger s':>9} {'series s':>9} "
              f"{'yearly s':>9} {'monthly s':>10} {'capacity s':>11} {'request s':>10}  "
              "P50 (yearly)")
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        print(measure(n, args.draws), flush=True)


if __name__ == "__main__":
    main()
