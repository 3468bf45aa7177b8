"""Read any supported survey file into a GeoDataFrame, as found: no checks, no mapping.

Formats: zipped shapefiles (nested folders and several layers allowed), shapefiles,
GeoPackage, GeoJSON, KML/KMZ and CSV (a WKT column, or lat/lon columns of points or of polygon
vertices). Each extension is opened only by its own reader (:mod:`planner.io.formats`).
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from planner.areas import WGS84
from planner.errors import (
    InputError,
    LayerChoiceError,
    UnsupportedFormatError,
)
from planner.io import formats
from planner.io.archives import ArchiveLimits, _scrub, safe_extract
from planner.io.columns import SYNONYMS, norm_key
from planner.io.encodings import _shapefile_encoding

GEODATA_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".kml", ".kmz", ".csv")


WKT_COLUMNS = ("wkt", "geometry", "geom", "thegeom", "shape", "wktgeom")


LAT_COLUMNS = ("lat", "latitude", "ycoord", "gpslat")


LON_COLUMNS = ("lon", "long", "lng", "longitude", "xcoord", "gpslon", "gpslong")


X_COLUMNS = ("x", "easting", "east")


Y_COLUMNS = ("y", "northing", "north")


VERTEX_ORDER_COLUMNS = ("vertex", "vertexid", "seq", "sequence", "order", "pointorder", "ptorder")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _choose(name: str, candidates: dict[str, Any], layer: str | None, what: str) -> str:
    if layer is not None:
        matches = [k for k in candidates if k == layer or Path(k).stem == layer]
        if len(matches) == 1:
            return matches[0]
        raise LayerChoiceError(f"{name}: no {what} called {layer!r}. It holds: "
                               f"{', '.join(sorted(candidates))}.", argument="layer")
    if len(candidates) == 1:
        return next(iter(candidates))
    if not candidates:
        raise UnsupportedFormatError(
            f"{name}: no geodata found. planner reads {', '.join(GEODATA_SUFFIXES)} "
            "(also inside a .zip).", argument="file")
    raise LayerChoiceError(
        f"{name}: holds {len(candidates)} {what}s: {', '.join(sorted(candidates))}. "
        f"Choose one by its name.", argument="layer")


def _read_csv(path: Path, display: str, encoding: str | None = None) -> gpd.GeoDataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                         encoding=encoding or "utf-8-sig")
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{display}: the CSV is empty (no header row, no features). Save it "
                         "with a header row and one feature per row.", argument="file") from exc
    except (UnicodeDecodeError, LookupError, pd.errors.ParserError) as exc:
        raise UnsupportedFormatError(
            f"{display}: cannot read as CSV ({_scrub(exc, path, display)}). Save it as UTF-8 "
            "CSV with a header row, or give its text encoding (e.g. cp1252).",
            argument="encoding") from exc
    keys = {norm_key(c): c for c in df.columns}
    wkt = next((keys[k] for k in WKT_COLUMNS if k in keys), None)
    if wkt is not None:
        geoms = shapely.from_wkt(df[wkt].fillna("").to_numpy(dtype=object), on_invalid="ignore")
        gdf = gpd.GeoDataFrame(df.drop(columns=[wkt]), geometry=gpd.GeoSeries(geoms))
        unread = [i for i, (g, t) in enumerate(zip(geoms, df[wkt].fillna(""), strict=True))
                  if g is None and str(t).strip()]
        gdf.attrs["read_notes"] = [(i, f"its {wkt} value is not WKT planner can read",
                                    "error", None) for i in unread]
        return gdf
    lat = next((keys[k] for k in LAT_COLUMNS if k in keys), None)
    lon = next((keys[k] for k in LON_COLUMNS if k in keys), None)
    crs: Any = None
    if lat is None or lon is None:
        lat = next((keys[k] for k in Y_COLUMNS if k in keys), None)
        lon = next((keys[k] for k in X_COLUMNS if k in keys), None)
    else:
        crs = WGS84
    if lat is None or lon is None:
        raise UnsupportedFormatError(
            f"{display}: no geometry found. A CSV needs a WKT column (named WKT or geometry) or "
            "coordinate columns (lat/lon, or x/y with the coordinate system given).",
            argument="file")
    x = pd.to_numeric(df[lon], errors="coerce").to_numpy()
    y = pd.to_numeric(df[lat], errors="coerce").to_numpy()
    points = np.asarray(shapely.points(x, y), dtype=object)
    rest = df.drop(columns=[lat, lon])
    id_col = next((c for c in rest.columns if norm_key(c) in
                   (*SYNONYMS["hazard_id"], *SYNONYMS["release_id"])), None)
    if id_col is not None and rest[id_col].duplicated().any():
        gdf = _polygons_from_vertices(rest, points, id_col, crs)
    else:
        gdf = gpd.GeoDataFrame(rest, geometry=points, crs=crs)
    return _note_assumed_crs(gdf, lat, lon) if crs is not None else gdf


def _polygons_from_vertices(rest: pd.DataFrame, points: np.ndarray, id_col: str,
                            crs: Any) -> gpd.GeoDataFrame:
    """One row per vertex: a polygon per id, in vertex order when a column gives it."""
    order = next((c for c in rest.columns if norm_key(c) in VERTEX_ORDER_COLUMNS), None)
    tmp = rest.assign(_pt=np.asarray(points, dtype=object), _row=np.arange(len(rest)))
    if order is not None:
        tmp = tmp.assign(_ord=pd.to_numeric(tmp[order], errors="coerce"))
        tmp = tmp.sort_values([id_col, "_ord", "_row"], kind="stable")
    rows: list[pd.Series] = []
    polys: list[Any] = []
    for _, grp in tmp.groupby(id_col, sort=False):
        coords = shapely.get_coordinates(grp["_pt"].to_numpy())
        rows.append(grp.iloc[0])
        polys.append(shapely.polygons(coords) if len(coords) >= 3
                     else shapely.linestrings(coords) if len(coords) == 2 else
                     shapely.points(coords[0]) if len(coords) == 1 else None)
    out = pd.DataFrame(rows).drop(columns=["_pt", "_row", "_ord"], errors="ignore")
    if order is not None:
        out = out.drop(columns=[order])
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry=polys, crs=crs)


def _note_assumed_crs(gdf: gpd.GeoDataFrame, lat: str, lon: str) -> gpd.GeoDataFrame:
    gdf.attrs["crs_note"] = (f"columns {lat!r}/{lon!r} read as WGS 84 latitude/longitude "
                             "(EPSG:4326); give the coordinate system if they are in another "
                             "datum")
    return gdf


def _read_layer(src: str, layer: str, path: Path, display: str,
                encoding: str | None) -> gpd.GeoDataFrame:
    """Read one layer; geometries GDAL hands over broken (unclosed rings) are reported."""
    def read(on_invalid: str) -> gpd.GeoDataFrame:
        kwargs: dict[str, Any] = {"encoding": encoding} if encoding else {}
        with warnings.catch_warnings():   # GDAL's own note on unclosed rings: reported below
            warnings.simplefilter("ignore", RuntimeWarning)
            return pyogrio.read_dataframe(src, layer=layer, on_invalid=on_invalid, **kwargs)

    try:
        try:
            return read("raise")
        except shapely.errors.GEOSException:
            fixed = read("fix")
            dropped = read("ignore")
    except UnicodeDecodeError as exc:
        raise InputError(f"{display}: its text cannot be read as {encoding or 'UTF-8'} "
                         f"({exc.reason}). Give the file's text encoding (e.g. cp1252, cp1251).",
                         argument="encoding") from exc
    except (shapely.errors.GEOSException, pyogrio.errors.DataSourceError,
            pyogrio.errors.DataLayerError, pyogrio.errors.GeometryError,
            pyogrio.errors.FieldError, pyogrio.errors.CRSError, RuntimeError) as exc:
        raise UnsupportedFormatError(f"{display}: cannot be read ({_scrub(exc, path, display)})."
                                     , argument="file") from exc
    notes: list[tuple[int | None, str, str, str | None]] = []
    for i, (g_fixed, g_raw) in enumerate(zip(fixed.geometry, dropped.geometry, strict=True)):
        if g_raw is None and g_fixed is not None:
            notes.append((i, "a ring is not closed: closed by repeating its first vertex",
                          "repaired", None))
        elif g_raw is None and g_fixed is None:
            notes.append((i, "its geometry cannot be read (a ring of fewer than 4 points, or "
                          "malformed coordinates)", "error", None))
    fixed.attrs["read_notes"] = notes
    return fixed


def _read_vector(path: Path, display: str, layer: str | None,
                 encoding: str | None = None) -> gpd.GeoDataFrame:
    suffix = path.suffix.lower()
    formats.check_local_path(path, display)
    formats.check_signature(path, display)
    src = formats.gdal_path(path)
    try:
        layers = pyogrio.list_layers(src)
        driver = str(pyogrio.read_info(src, layer=str(layers[0][0]))["driver"]) if len(
            layers) else ""
    except Exception as exc:  # GDAL raises its own exception types
        raise UnsupportedFormatError(f"{display}: cannot be read as {suffix} "
                                     f"({_scrub(exc, path, display)}).",
                                     argument="file") from exc
    formats.check_driver(driver, path, display)
    notes: list[tuple[int | None, str, str, str | None]] = []
    if suffix == ".shp":
        encoding, notes = _shapefile_encoding(path, display, encoding)
    names = {str(n): g for n, g in layers}
    if suffix == ".kml" and layer is None and len(names) > 1:
        # KML folders are only an organisation of one layer: read them all
        frames = [_read_layer(src, n, path, display, encoding) for n in names]
        offsets = np.cumsum([0] + [len(f) for f in frames])
        for f, off in zip(frames, offsets, strict=False):
            notes += [(None if r is None else r + int(off), m, s, a)
                      for r, m, s, a in f.attrs.get("read_notes", [])]
        frames = [f for f in frames if len(f)]
        if not frames:
            return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84))
        gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    else:
        spatial = {n: g for n, g in names.items() if g is not None} or names
        chosen = _choose(display, spatial, layer, "layer")
        gdf = _read_layer(src, chosen, path, display, encoding)
        notes += gdf.attrs.get("read_notes", [])
    gdf.attrs["read_notes"] = notes
    return gdf


def read_file(path: str | Path, *, layer: str | None = None,
              limits: ArchiveLimits | None = None, encoding: str | None = None,
              display: str | None = None) -> gpd.GeoDataFrame:
    """Read any supported survey file into a GeoDataFrame, as found (no checks, no mapping).

    The CRS is the file's own (``None`` when the file does not say, e.g. no .prj). Each
    extension is read only by its own reader (:mod:`planner.formats`): a file whose content
    is of another format is refused. What was noticed while reading (an unclosed ring closed,
    a text encoding detected) is in ``attrs["read_notes"]``.

    Parameters
    ----------
    path : str or Path
        The file.
    layer : str, optional
        The layer (GeoPackage) or file (inside a zip) when there are several.
    limits : ArchiveLimits, optional
        Limits applied to zip archives before unpacking.
    encoding : str, optional
        Text encoding of a shapefile's attributes or of a CSV, when the file does not say.
    display : str, optional
        The file's name as the user knows it, for messages (default: its name).

    Examples
    --------
    >>> import tempfile
    >>> csv = Path(tempfile.mkdtemp()) / "h.csv"
    >>> _ = csv.write_text('id,WKT\\nA,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\\n')
    >>> read_file(csv).geometry.iloc[0].geom_type, read_file(csv).crs
    ('Polygon', None)
    """
    path = Path(path)
    display = display or path.name
    formats.check_local_path(path, display)
    if not path.exists():
        raise InputError(f"{display}: no such file.", argument="file")
    suffix = path.suffix.lower()
    if suffix in (".zip", ".kmz"):
        with tempfile.TemporaryDirectory(prefix="planner-") as tmp:
            files = safe_extract(path, Path(tmp), limits, display)
            found = {
                str(f.relative_to(Path(tmp).resolve())): f for f in files
                if f.suffix.lower() in GEODATA_SUFFIXES and "__MACOSX" not in f.parts
                and not f.name.startswith("._")
            }
            if suffix == ".kmz":
                found = {k: v for k, v in found.items() if v.suffix.lower() == ".kml"}
                chosen = _choose(display, found, None, "KML document")
                inner_layer = layer
            else:
                gpkgs = [k for k in found if k.lower().endswith(".gpkg")]
                pick_file = layer if (layer and len(gpkgs) != 1) else None
                chosen = _choose(display, found, pick_file, "file")
                inner_layer = layer if pick_file is None else None
            return read_file(found[chosen], layer=inner_layer, limits=limits,
                             encoding=encoding, display=f"{display}/{chosen}")
    if path.stat().st_size == 0:
        raise InputError(f"{display}: the file is empty (0 bytes). Export it again.",
                         argument="file")
    if suffix == ".csv":
        return _read_csv(path, display, encoding)
    if suffix == ".shp":
        for ext in (".shx", ".dbf"):
            if not path.with_suffix(ext).exists() and not path.with_suffix(ext.upper()).exists():
                raise InputError(f"{display}: the {ext} file that belongs to it is missing. "
                                 "Zip the .shp together with its .shx, .dbf and .prj files.",
                                 argument="file")
    if suffix in GEODATA_SUFFIXES:
        return _read_vector(path, display, layer, encoding)
    raise UnsupportedFormatError(
        f"{display}: not a geodata format planner reads. Use a zipped shapefile, GeoPackage, "
        "GeoJSON, KML/KMZ or CSV (WKT or lat/lon columns).", argument="file")
