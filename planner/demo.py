"""The demo programme: files in ``planner/data/demo/`` and a store built from them.

The files ship inside the package, so ``planner demo`` works from any install (editable or
not). ``python -m planner.demo --write planner/data/demo`` (re)writes the shipped files from
the seeded generator in :mod:`planner.synthetic`; ``planner demo`` ingests them into a
GeoPackage store through the same path a user's files take, and prints the status table.

The files exercise the formats field data arrives in:

=====================================  =====================================================
``hazards_baseline_survey.zip``        zipped shapefile (in a folder, with .prj), UTM 48N,
                                       hazards recorded before entry into force
``hazards_discovered.geojson``         GeoJSON (WGS 84), hazards discovered after EIF
``releases_cleared_reduced.gpkg``      GeoPackage, clearance and technical-survey releases
``releases_nts_cancelled.csv``         CSV with a WKT column in UTM 48N (needs ``--crs``),
                                       cancellations by non-technical survey
=====================================  =====================================================
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from planner.ingest import IngestOptions, ingest
from planner.layers import LayerName
from planner.programme import Programme
from planner.store import Store, create_store
from planner.synthetic import SyntheticSpec, synthetic_programme

DEMO_SPEC = SyntheticSpec(n_hazards=200, releases_per_hazard=5.0, seed=20111)
#: One five-year extension granted, as most States Parties with contamination have had.
DEMO_SETTINGS: dict[str, Any] = {"extensions": [
    {"months": 60, "granted_on": "2020-11-16",
     "note": "demo: first extension, to 1 August 2026"}]}
DEMO_PROGRAMME = Programme(name="Demo province (synthetic)", eif=DEMO_SPEC.eif,
                           crs=DEMO_SPEC.crs, settings=DEMO_SETTINGS)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DemoFile:
    """One shipped file and how to ingest it."""

    file: str
    layer: LayerName
    options: dict[str, Any] = field(default_factory=dict)


def default_data_dir() -> Path:
    """The demo files shipped inside the package (``planner/data/demo``)."""
    return Path(str(resources.files("planner") / "data" / "demo"))


def write_demo_files(out_dir: Path, spec: SyntheticSpec = DEMO_SPEC) -> list[DemoFile]:
    """Write the demo programme's survey files and their manifest into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hazards, releases = synthetic_programme(spec)
    for frame in (hazards, releases):
        for col in ("recorded_on", "released_on"):
            if col in frame:
                frame[col] = frame[col].map(lambda d: d.isoformat())
    before = hazards[~hazards["found_after_eif"]].drop(columns=["found_after_eif"])
    after = hazards[hazards["found_after_eif"]].drop(columns=["found_after_eif"])
    # a field export: shapefile column names, in a folder, zipped
    shp = before.rename(columns={"hazard_id": "HAZ_CODE", "status": "TYPE",
                                 "recorded_on": "SURVEY_DT", "region": "DISTRICT",
                                 "munition_type": "MUNITION"})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "baseline_survey_2008_2011"
        folder.mkdir()
        shp.to_file(folder / "hazards_baseline.shp", engine="pyogrio")
        target = out_dir / "hazards_baseline_survey.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, f"baseline_survey_2008_2011/{f.name}")
    after.to_crs(4326).to_file(out_dir / "hazards_discovered.geojson", driver="GeoJSON",
                               engine="pyogrio", layer_options={"COORDINATE_PRECISION": 7})
    cr = releases[releases["method"] != "cancelled"]
    gpkg = out_dir / "releases_cleared_reduced.gpkg"
    gpkg.unlink(missing_ok=True)
    cr.to_file(gpkg, layer="releases", engine="pyogrio")
    nts = releases[releases["method"] == "cancelled"]
    csv = nts.drop(columns=["geometry"]).assign(WKT=nts.geometry.to_wkt(rounding_precision=2))
    csv.to_csv(out_dir / "releases_nts_cancelled.csv", index=False)
    files = [
        DemoFile("hazards_baseline_survey.zip", "hazards"),
        DemoFile("hazards_discovered.geojson", "hazards"),
        DemoFile("releases_cleared_reduced.gpkg", "releases"),
        DemoFile("releases_nts_cancelled.csv", "releases", {"crs": spec.crs}),
    ]
    manifest = {"programme": {"name": DEMO_PROGRAMME.name, "eif": spec.eif.isoformat(),
                              "crs": spec.crs, "settings": DEMO_SETTINGS},
                "seed": spec.seed, "n_hazards": spec.n_hazards,
                "files": [f.__dict__ for f in files]}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return files


def build_demo_store(store_path: Path, data_dir: Path | None = None, *, overwrite: bool = True,
                     on_file: Callable[[str], None] | None = None) -> Store:
    """Create a store and ingest every file listed in ``data_dir/manifest.json``."""
    data_dir = data_dir or default_data_dir()
    manifest = json.loads((data_dir / MANIFEST).read_text())
    prog = manifest["programme"]
    if overwrite and store_path.exists():
        store_path.unlink()
    store = create_store(store_path, Programme(prog["name"], dt.date.fromisoformat(prog["eif"]),
                                               prog["crs"], prog.get("settings", {})))
    for entry in manifest["files"]:
        if on_file is not None:
            on_file(entry["file"])
        ingest(store, entry["layer"], data_dir / entry["file"],
               IngestOptions(**entry["options"]))
    return store


def main(argv: list[str] | None = None) -> None:
    """``python -m planner.demo --write data``: regenerate the shipped demo files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, required=True, help="folder to write into")
    args = parser.parse_args(argv)
    tmp = args.write.with_name(args.write.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = write_demo_files(tmp)
    for f in files:
        shutil.copy2(tmp / f.file, args.write / f.file)
    shutil.copy2(tmp / MANIFEST, args.write / MANIFEST)
    shutil.rmtree(tmp)
    print(f"wrote {len(files)} files and {MANIFEST} to {args.write}")


if __name__ == "__main__":
    main()

