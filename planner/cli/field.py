"""``planner marking-plan | map``: plans and maps for the field.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.shared import JsonOpt, StoreOpt, _date, _errors, app, err, out
from planner.errors import InputError
from planner.store import open_store

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.field.marking import MarkingOptions, MarkingPlan
    from planner.store import Store


@app.command("marking-plan")
def marking_plan_cmd(
        store: StoreOpt,
        out_file: Annotated[Path, typer.Option(
            "--out", help="GeoPackage to write (layers enclosures, signs, fence, posts).")],
        kml: Annotated[bool, typer.Option(help="Also write <out>.kml (signs, fence, "
                                               "enclosures).")] = False,
        gpx: Annotated[bool, typer.Option(help="Also write <out>.gpx (sign waypoints, fence "
                                               "tracks).")] = False,
        csv: Annotated[bool, typer.Option(help="Also write <out>_signs.csv.")] = False,
        pdf: Annotated[bool, typer.Option(help="Also write <out>_sheets.pdf: a map and sign "
                                               "table per enclosure.")] = False,
        hazard_id: Annotated[list[str] | None, typer.Option(
            "--id", help="Hazard to mark (repeatable).")] = None,
        region: Annotated[list[str] | None, typer.Option(help="Region (repeatable).")] = None,
        status: Annotated[list[str] | None, typer.Option(help="SHA or CHA (repeatable).")]
        = None,
        at: Annotated[str | None, typer.Option(
            help="Mark what remains contaminated at this date (default today).")] = None,
        margin_m: Annotated[float, typer.Option(help="Perimeter outside the hazard [m].")]
        = 0.0,
        fence_margin_m: Annotated[float, typer.Option(help="Fence outside the hazard [m].")]
        = 10.0,
        merge_m: Annotated[float, typer.Option(
            help="Hazards closer than this form one enclosure [m].")] = 20.0,
        sign_spacing_m: Annotated[float, typer.Option(help="Longest gap between signs "
                                                           "[m].")] = 50.0,
        post_spacing_m: Annotated[float, typer.Option(help="Longest gap between fence posts "
                                                           "[m].")] = 2.5,
        corner_deg: Annotated[float, typer.Option(help="A turn sharper than this gets a "
                                                       "sign [degrees].")] = 45.0,
        join: Annotated[str, typer.Option(help="round or mitre corners.")] = "round",
        price_sign: Annotated[float, typer.Option(help="Price of one sign.")] = 0.0,
        price_post: Annotated[float, typer.Option(help="Price of one post.")] = 0.0,
        price_fence_m: Annotated[float, typer.Option(help="Price of one metre of fence.")]
        = 0.0,
        currency: Annotated[str, typer.Option(help="Currency of the prices.")] = "USD",
        fence_m_per_day: Annotated[float, typer.Option(help="Fence metres per team-day.")]
        = 150.0,
        signs_per_day: Annotated[float, typer.Option(help="Signs per team-day.")] = 40.0,
        settlements: Annotated[Path | None, typer.Option(
            help="Points of settlements (any vector file): nearest enclosures first.")] = None,
        roads: Annotated[Path | None, typer.Option(help="Road lines (any vector file).")]
        = None,
        as_json: JsonOpt = False) -> None:
    """Plan perimeter marking and fencing: signs facing the safe side, fence, posts, costs."""
    from planner.field.marking import Selection, plan_remaining

    when = _date(at, "--at") or dt.date.today()
    with _errors():
        options = _marking_options(
            margin_m=margin_m, fence_margin_m=fence_margin_m, merge_m=merge_m,
            sign_spacing_m=sign_spacing_m, post_spacing_m=post_spacing_m, corner_deg=corner_deg,
            join=join, prices=(price_sign, price_post, price_fence_m, currency),
            rates=(fence_m_per_day, signs_per_day))
        st = open_store(store)
        places = _read_places(settlements, roads)
        plan = plan_remaining(st, when, Selection(hazard_id or [], region or [], status or []),
                              options, settlements=places[0], roads=places[1])
        written = _write_plan(plan, st, out_file, kml=kml, gpx=gpx, csv=csv, pdf=pdf)
    _print_plan_summary(plan, when, written, as_json=as_json)


def _marking_options(*, margin_m: float, fence_margin_m: float, merge_m: float,
                     sign_spacing_m: float, post_spacing_m: float, corner_deg: float, join: str,
                     prices: tuple[float, float, float, str], rates: tuple[float, float]
                     ) -> MarkingOptions:
    """The :class:`MarkingOptions` of the command's values (InputError if any is invalid)."""
    from planner.field.marking import Labour, MarkingOptions, Prices

    return MarkingOptions(
        margin_m=margin_m, fence_margin_m=fence_margin_m, merge_distance_m=merge_m,
        sign_spacing_m=sign_spacing_m, post_spacing_m=post_spacing_m,
        corner_angle_deg=corner_deg, join=join,  # type: ignore[arg-type]
        prices=Prices(*prices), labour=Labour(*rates))


def _read_places(settlements: Path | None, roads: Path | None
                 ) -> list[gpd.GeoDataFrame | None]:
    """The settlement and road layers, each read from its file when given, else None."""
    from planner.ingest import read_file

    return [read_file(p) if p is not None else None for p in (settlements, roads)]


def _write_plan(plan: MarkingPlan, st: Store, out_file: Path, *, kml: bool, gpx: bool,
                csv: bool, pdf: bool) -> list[Path]:
    """Write the GeoPackage and each requested KML, GPX, CSV and PDF; the paths written."""
    from planner.field import exports
    from planner.field.maps import marking_sheets_pdf

    written = [exports.write_gpkg(plan, out_file)]
    stem = out_file.with_suffix("")
    if kml:
        written.append(exports.write_kml(plan, stem.with_suffix(".kml"),
                                         title=f"{st.programme().name}: marking plan"))
    if gpx:
        written.append(exports.write_gpx(plan, stem.with_suffix(".gpx"),
                                         title=f"{st.programme().name}: marking plan"))
    if csv:
        written.append(exports.write_csv(plan, Path(f"{stem}_signs.csv")))
    if pdf:
        sheets, n = marking_sheets_pdf(plan, Path(f"{stem}_sheets.pdf"),
                                       st.read("hazards"))
        written.append(sheets)
        if n < len(plan.enclosures):
            err.print(f"note: the PDF holds the first {n} enclosures by priority of "
                      f"{len(plan.enclosures)}", markup=False)
    return written


def _print_plan_summary(plan: MarkingPlan, when: dt.date, written: list[Path], *,
                        as_json: bool) -> None:
    """Print the totals, the priority basis and the files written (or all of it as JSON)."""
    if as_json:
        print(json.dumps({"totals": plan.totals, "method": plan.method,
                          "files": [str(p) for p in written]}, indent=2))
        return
    t = plan.totals
    out.print(f"{t['enclosures']} enclosure(s) around {t['hazards']} hazard(s) remaining at "
              f"{when}: {t['signs']} signs, {t['fence_m']:,.0f} m of fence, {t['posts']} posts, "
              f"{t['labour_days']:,.1f} team-days"
              + (f", cost {t['cost']:,.0f} {t['currency']}" if t["cost"] is not None else ""),
              markup=False)
    out.print(f"priority: {t['priority_basis']}", markup=False)
    out.print("wrote " + ", ".join(str(p) for p in written), markup=False)


@app.command("map")
def map_cmd(store: StoreOpt,
            out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
            plan: Annotated[Path | None, typer.Option(
                help="A marking plan .gpkg (from `planner marking-plan`) to draw.")] = None
            ) -> None:
    """An interactive map of hazards, releases and a marking plan, as one HTML file."""
    import pyogrio

    from planner.field.maps import programme_map, save_map

    with _errors():
        st = open_store(store)
        layers: dict[str, object] = {}
        if plan is not None:
            if not plan.exists():
                raise InputError(f"{plan}: no such file; write one with `planner "
                                 "marking-plan --out plan.gpkg`")
            for name in ("enclosures", "signs", "fence"):
                layers[name] = pyogrio.read_dataframe(plan, layer=name)
        m = programme_map(st.read("hazards"), st.read("releases"), title=st.programme().name,
                          **layers)
        save_map(m, out_file)
    out.print(f"wrote {out_file}: open it in a browser (base-map tiles need the internet)",
              markup=False)
