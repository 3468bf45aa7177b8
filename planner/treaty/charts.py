"""Static charts (matplotlib, no display needed): the burn-down with its forecast fan."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

import pandas as pd

from planner.treaty.forecast import Forecast


def burndown_png(history: pd.DataFrame, forecast: Forecast, *,
                 deadlines: Sequence[tuple[str, dt.date]] = (),
                 plan: pd.DataFrame | None = None, title: str = "") -> bytes:
    """Remaining area over time: history, forecast fan (P10-P90), plan and deadlines, as PNG.

    Parameters
    ----------
    history : DataFrame
        ``period_end`` and ``remaining_m2`` [m²] of the recorded past.
    forecast : Forecast
        Its ``fan`` gives the band and the median line.
    deadlines : sequence of (label, date)
        Vertical lines.
    plan : DataFrame, optional
        ``period_end`` and ``remaining_m2`` of a work plan to zero.
    title : str
        Chart title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    try:
        km2 = 1e-6
        if len(history):
            ax.plot(pd.to_datetime(history["period_end"]), history["remaining_m2"] * km2,
                    color="#1f3b73", lw=2, marker="o", ms=3, label="recorded remaining")
        fan = forecast.fan
        if len(fan):
            x = pd.to_datetime(fan["period_end"])
            ax.fill_between(x, fan["low_m2"] * km2, fan["high_m2"] * km2, color="#e69f00",
                            alpha=0.3, lw=0, label="forecast P10–P90")
            ax.plot(x, fan["median_m2"] * km2, color="#b35900", lw=2, ls="--",
                    label="forecast median")
        if plan is not None and len(plan):
            ax.plot(pd.to_datetime(plan["period_end"]), plan["remaining_m2"] * km2,
                    color="#009e73", lw=2, ls=":", marker="s", ms=3, label="work plan")
        colours = ["#555555", "#cc0000", "#7a0177", "#0072b2"]
        for i, (label, day) in enumerate(deadlines):
            ax.axvline(float(mdates.date2num(pd.Timestamp(day))),
                       color=colours[i % len(colours)], lw=1.2, ls="-.")
            ax.annotate(f"{label}\n{day.isoformat()}", (mdates.date2num(pd.Timestamp(day)), 1),
                        xycoords=("data", "axes fraction"), xytext=(3, -3),
                        textcoords="offset points", va="top", fontsize=7,
                        color=colours[i % len(colours)])
        ax.set_ylabel("remaining contaminated area [km²]")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(mdates.YearLocator(base=2))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.set_title(title or f"Burn-down: {forecast.scenario.name} forecast", fontsize=10)
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
