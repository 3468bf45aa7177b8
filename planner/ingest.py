"""Read survey files, check and repair every feature, and add them to a store in one piece.

Formats: zipped shapefiles (nested folders and several layers allowed), shapefiles,
GeoPackage, GeoJSON, KML/KMZ and CSV (a WKT column, or lat/lon columns of points or of polygon
vertices). Column names are mapped to planner's model from common spellings, or from a mapping
the user passes.

Every check runs on every feature before anything is written, and *all* problems are reported
together (:class:`planner.errors.ValidationError`). Repairs (invalid rings fixed with
``make_valid``, features crossing the antimeridian) are made and reported. An import is
all-or-nothing and a file already imported (same sha256) is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import stat
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from planner.areas import WGS84, equal_area_crs
from planner.errors import (
    CRSMissingError,
    DuplicateImportError,
    InputError,
    LayerChoiceError,
    Problem,
    TooLargeError,
    UnsupportedFormatError,
    ValidationError,
)
from planner.layers import (
    COLUMNS,
    ID_COLUMN,
    METHOD_SPELLINGS,
    METHODS,
    STATUS_SPELLINGS,
    STATUSES,
    SYNONYMS,
    LayerName,
    norm_key,
)
from planner.programme import Programme
from planner.store import ImportRecord, Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

GEODATA_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".kml", ".kmz", ".csv")
WKT_COLUMNS = ("wkt", "geometry", "geom", "thegeom", "shape", "wktgeom")
LAT_COLUMNS = ("lat", "latitude", "ycoord", "gpslat")
LON_COLUMNS = ("lon", "long", "lng", "longitude", "xcoord", "gpslon", "gpslong")
X_COLUMNS = ("x", "easting", "east")
Y_COLUMNS = ("y", "northing", "north")
VERTEX_ORDER_COLUMNS = ("vertex", "vertexid", "seq", "sequence", "order", "pointorder", "ptorder")


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits applied to every archive before a byte of it is unpacked.

    Sizes are in bytes [B]. The defaults suit survey exports (tens of MB) with a wide margin.
    """

    max_members: int = 2_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0


@dataclass(frozen=True)
class IngestOptions:
    """How to read a file; every field has a sensible default.

    Parameters
    ----------
    layer : str, optional
        Layer (GeoPackage), shapefile name (inside a zip) to read when there are several.
    crs : str, optional
        CRS of the coordinates when the file does not say (no .prj, CSV), e.g. ``EPSG:32648``.
    column_map : mapping, optional
        ``{"hazard_id": "Kenmerk", "released_on": "Datum,Datum1"}``: planner column to the
        file's column(s); with several, the first non-empty value of each row is used.
    recorded_on, released_on : datetime.date, optional
        Date for rows whose file has no date column (or an empty cell).
    status : str, optional
        SHA or CHA for rows without a status.
    method : str, optional
        cancelled, reduced or cleared for rows without a method.
    buffer_m : float, optional
        Turn evidence points into circles of this radius [m]; points are refused otherwise.
    max_edge_m : float
        Longest allowed distance between consecutive vertices [m]; longer ones are GPS jumps.
    max_vertices : int, optional
        Refuse files with more vertices than this (the web service sets it).
    today : datetime.date, optional
        Dates after this are refused as "in the future" (default: today).
    """

    layer: str | None = None
    crs: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    recorded_on: dt.date | None = None
    released_on: dt.date | None = None
    status: str | None = None
    method: str | None = None
    buffer_m: float | None = None
    max_edge_m: float = 5_000.0
    today: dt.date | None = None
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    max_vertices: int | None = None


@dataclass
class IngestResult:
    """What an import produced: the features as stored, and what was noticed on the way."""

    import_id: int
    features: gpd.GeoDataFrame
    problems: list[Problem]
    record: ImportRecord

    @property
    def warnings(self) -> list[Problem]:
        """Repairs and warnings (an import that landed has no errors)."""
        return [p for p in self.problems if p.severity != "error"]


# ----------------------------------------------------------------------------- reading


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_extract(archive: Path, dest: Path, limits: ArchiveLimits | None = None) -> list[Path]:
    """Unpack a zip archive after checking it cannot escape ``dest`` or explode.

    Refuses absolute paths and ``..`` (zip-slip), symbolic links, too many members, and
    archives whose unpacked size or compression ratio is beyond ``limits`` (zip bombs). Sizes
    are checked against the bytes actually written, not only the archive's own claims.

    Returns the paths of the files written.
    """
    limits = limits or ArchiveLimits()
    name = archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedFormatError(
            f"{name}: not a readable zip archive ({exc}). Upload a .zip made by your GIS or "
            "file manager, or the unzipped .shp/.gpkg/.geojson/.kml file.") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise InputError(f"{name}: {len(infos)} files in the archive, more than the limit "
                             f"of {limits.max_members}. Zip only the survey layers.")
        declared = 0
        bad: list[str] = []
        for info in infos:
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if info.filename.startswith(("/", "\\")) or (parts and ":" in parts[0]):
                bad.append(f"{info.filename!r} is an absolute path")
            elif ".." in parts:
                bad.append(f"{info.filename!r} points outside the archive (..)")
            if stat.S_ISLNK(info.external_attr >> 16):
                bad.append(f"{info.filename!r} is a symbolic link")
            declared += info.file_size
            if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
                bad.append(f"{info.filename!r} unpacks {info.file_size / info.compress_size:.0f}"
                           f" times its packed size (limit {limits.max_ratio:.0f}): zip bomb?")
        if declared > limits.max_total_bytes:
            bad.append(f"unpacks to {declared / 1e6:.0f} MB, more than the limit of "
                       f"{limits.max_total_bytes / 1e6:.0f} MB")
        if bad:
            raise InputError(f"{name}: unsafe archive, nothing was unpacked:\n  - "
                             + "\n  - ".join(bad))
        written: list[Path] = []
        total = 0
        root = dest.resolve()
        for info in infos:
            if info.is_dir():
                continue
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root):
                raise InputError(f"{name}: {info.filename!r} points outside the archive.")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    total += len(chunk)
                    if total > limits.max_total_bytes:
                        raise InputError(f"{name}: unpacks to more than the limit of "
                                         f"{limits.max_total_bytes / 1e6:.0f} MB: zip bomb?")
                    out.write(chunk)
            written.append(target)
    return written


def _choose(name: str, candidates: dict[str, Any], layer: str | None, what: str) -> str:
    if layer is not None:
        matches = [k for k in candidates if k == layer or Path(k).stem == layer]
        if len(matches) == 1:
            return matches[0]
        raise LayerChoiceError(f"{name}: no {what} called {layer!r}. It holds: "
                               f"{', '.join(sorted(candidates))}.")
    if len(candidates) == 1:
        return next(iter(candidates))
    if not candidates:
        raise UnsupportedFormatError(
            f"{name}: no geodata found. planner reads {', '.join(GEODATA_SUFFIXES)} "
            "(also inside a .zip).")
    raise LayerChoiceError(
        f"{name}: holds {len(candidates)} {what}s: {', '.join(sorted(candidates))}. "
        f"Choose one with --layer NAME.")


def _read_csv(path: Path, display: str) -> gpd.GeoDataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                         encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UnsupportedFormatError(f"{display}: cannot read as CSV ({exc}). Save it as "
                                     "UTF-8 CSV with a header row.") from exc
    keys = {norm_key(c): c for c in df.columns}
    wkt = next((keys[k] for k in WKT_COLUMNS if k in keys), None)
    if wkt is not None:
        geoms = shapely.from_wkt(df[wkt].fillna("").to_numpy(dtype=object), on_invalid="warn")
        return gpd.GeoDataFrame(df.drop(columns=[wkt]), geometry=gpd.GeoSeries(geoms))
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
            "coordinate columns (lat/lon, or x/y with --crs).")
    x = pd.to_numeric(df[lon], errors="coerce").to_numpy()
    y = pd.to_numeric(df[lat], errors="coerce").to_numpy()
    points = shapely.points(x, y)
    rest = df.drop(columns=[lat, lon])
    id_col = next((c for c in rest.columns if norm_key(c) in
                   (*SYNONYMS["hazard_id"], *SYNONYMS["release_id"])), None)
    if id_col is not None and rest[id_col].duplicated().any():
        # one row per vertex: build a polygon per id, in vertex order when a column gives it
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
                         shapely.points(coords[0]))
        out = pd.DataFrame(rows).drop(columns=["_pt", "_row", "_ord"], errors="ignore")
        if order is not None:
            out = out.drop(columns=[order])
        gdf = gpd.GeoDataFrame(out.reset_index(drop=True), geometry=polys, crs=crs)
    else:
        gdf = gpd.GeoDataFrame(rest, geometry=points, crs=crs)
    return _note_assumed_crs(gdf, lat, lon) if crs is not None else gdf


def _note_assumed_crs(gdf: gpd.GeoDataFrame, lat: str, lon: str) -> gpd.GeoDataFrame:
    gdf.attrs["crs_note"] = (f"columns {lat!r}/{lon!r} read as WGS 84 latitude/longitude "
                             "(EPSG:4326); pass --crs if they are in another datum")
    return gdf


def _read_vector(path: Path, display: str, layer: str | None) -> gpd.GeoDataFrame:
    suffix = path.suffix.lower()
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:  # GDAL raises its own exception types
        raise UnsupportedFormatError(f"{display}: cannot be read as {suffix} ({exc}).") from exc
    names = {str(n): g for n, g in layers}
    if suffix in (".kml", ".kmz") and layer is None and len(names) > 1:
        # KML folders are only an organisation of one layer: read them all
        frames = [pyogrio.read_dataframe(path, layer=n) for n in names]
        frames = [f for f in frames if len(f)]
        if not frames:
            return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84))
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    spatial = {n: g for n, g in names.items() if g is not None} or names
    chosen = _choose(display, spatial, layer, "layer")
    return pyogrio.read_dataframe(path, layer=chosen)


def read_file(path: str | Path, *, layer: str | None = None,
              limits: ArchiveLimits | None = None) -> gpd.GeoDataFrame:
    """Read any supported survey file into a GeoDataFrame, as found (no checks, no mapping).

    The CRS is the file's own (``None`` when the file does not say, e.g. no .prj).

    Examples
    --------
    >>> import tempfile
    >>> csv = Path(tempfile.mkdtemp()) / "h.csv"
    >>> _ = csv.write_text('id,WKT\\nA,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\\n')
    >>> read_file(csv).geometry.iloc[0].geom_type, read_file(csv).crs
    ('Polygon', None)
    """
    path = Path(path)
    display = path.name
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix in (".zip", ".kmz"):
        with tempfile.TemporaryDirectory(prefix="planner-") as tmp:
            files = safe_extract(path, Path(tmp), limits)
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
            gdf = read_file(found[chosen], layer=inner_layer, limits=limits)
            return gdf
    if suffix == ".csv":
        return _read_csv(path, display)
    if suffix == ".shp":
        for ext in (".shx", ".dbf"):
            if not path.with_suffix(ext).exists() and not path.with_suffix(ext.upper()).exists():
                raise InputError(f"{display}: the {ext} file that belongs to it is missing. "
                                 "Zip the .shp together with its .shx, .dbf and .prj files.")
    if suffix in GEODATA_SUFFIXES:
        return _read_vector(path, display, layer)
    raise UnsupportedFormatError(
        f"{display}: not a geodata format planner reads. Use a zipped shapefile, GeoPackage, "
        "GeoJSON, KML/KMZ or CSV (WKT or lat/lon columns).")


# ----------------------------------------------------------------------------- mapping


def _feature_label(i: int, ident: str | None) -> str:
    return f"row {i + 1}" + (f" (id {ident})" if ident is not None else "")


def _candidates(raw_columns: list[str], target: str,
                column_map: Mapping[str, str]) -> list[str] | None:
    if target in column_map:
        return [c.strip() for c in column_map[target].split(",")]
    keys: dict[str, str] = {}
    for c in raw_columns:
        keys.setdefault(norm_key(c), c)
    found = [keys[s] for s in SYNONYMS.get(target, ()) if s in keys]
    return found or None


def _coalesce(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    out = df[cols[0]].astype(object).where(df[cols[0]].notna(), None)
    for c in cols[1:]:
        blank = out.isna() | (out.astype(str).str.strip() == "")
        out = out.where(~blank, df[c].astype(object))
    return out.where(~(out.isna() | (out.astype(str).str.strip() == "")), None)


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%dT%H:%M:%S")


def parse_date(value: Any) -> dt.date | None:
    """Parse one date cell; ``None`` when it cannot be read unambiguously.

    ISO dates, ``YYYY/MM/DD`` and ``DD.MM.YYYY`` / ``DD/MM/YYYY`` (day first, the common order
    in programme exports) are accepted; month-first dates are not.

    Examples
    --------
    >>> parse_date("2016/12/06"), parse_date("6.12.2016"), parse_date("12/31/2016")
    (datetime.date(2016, 12, 6), datetime.date(2016, 12, 6), None)
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text[:19], fmt).date()
        except ValueError:
            continue
    return None


def _parse_bool(value: Any) -> bool | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = norm_key(str(value))
    if text in ("1", "true", "yes", "y", "t", "ja"):
        return True
    if text in ("0", "false", "no", "n", "f", "nee"):
        return False
    return None


def _is_blank(v: Any) -> bool:
    return v is None or (not isinstance(v, str) and pd.isna(v)) or str(v).strip() == ""


# ----------------------------------------------------------------------------- checking


def _ll_bounds(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    b = shapely.bounds(geoms)
    if crs.is_geographic:
        return np.asarray(b, dtype=float)
    tr = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    with np.errstate(all="ignore"):
        x0, y0 = tr.transform(b[:, 0], b[:, 1], errcheck=False)
        x1, y1 = tr.transform(b[:, 2], b[:, 3], errcheck=False)
    return np.column_stack([x0, y0, x1, y1]).astype(float)


def _check_area_of_use(geoms: np.ndarray, crs: pyproj.CRS, labels: list[str],
                       problems: list[Problem]) -> np.ndarray:
    """Flag features outside the CRS's area of use; returns a mask of features that are in."""
    ok = np.ones(len(geoms), dtype=bool)
    raw = shapely.bounds(geoms)
    ll = _ll_bounds(geoms, crs)
    aou = crs.area_of_use
    margin = 2.0  # degrees: UTM zones are routinely used a little outside their 6 deg band
    for i in range(len(geoms)):
        if np.isnan(raw[i]).any():
            continue
        if crs.is_geographic:
            lon0, lat0, lon1, lat1 = raw[i]
            if min(lat0, lat1) < -90 or max(lat0, lat1) > 90:
                swapped = -90 <= lon0 <= 90 and -90 <= lon1 <= 90
                problems.append(Problem(labels[i], (
                    f"latitude {lat1 if lat1 > 90 else lat0:.6g} is outside -90..90"
                    + (": latitude and longitude look swapped. Swap the columns, or check "
                       "the coordinate order of your export." if swapped else
                       f". These are not {crs.name} degrees: if they are metres, pass the "
                       "right projected CRS with --crs (e.g. the UTM zone).")), "error"))
                ok[i] = False
                continue
            if min(lon0, lon1) < -180 or max(lon0, lon1) > 360:
                problems.append(Problem(labels[i], f"longitude {lon0:.6g} is outside -180..180"
                                        " (check the coordinate order or pass --crs)", "error"))
                ok[i] = False
            continue
        if not np.isfinite(ll[i]).all():
            problems.append(Problem(labels[i], f"coordinates ({raw[i][0]:.6g}, {raw[i][1]:.6g})"
                                    f" cannot be placed on Earth in {crs.name}. Check --crs.",
                                    "error"))
            ok[i] = False
            continue
        if aou is not None:
            w, s, e, n = aou.bounds
            inside_lat = s - margin <= ll[i][1] and ll[i][3] <= n + margin
            # an area of use crossing the antimeridian (e < w) is not checked in longitude
            inside_lon = e < w or (w - margin <= ll[i][0] and ll[i][2] <= e + margin)
            if not (inside_lat and inside_lon):
                problems.append(Problem(labels[i], (
                    f"lies at lon {ll[i][0]:.4f}, lat {ll[i][1]:.4f}, outside the area where "
                    f"{crs.name} is used ({aou.name[:60]}). The CRS is probably wrong, or x/y "
                    "are swapped: pass the right one with --crs."), "error"))
                ok[i] = False
    return ok


def _fix_antimeridian(geoms: np.ndarray, labels: list[str],
                      problems: list[Problem]) -> np.ndarray:
    """Shift the western part of features that wrap across 180 deg so they stay contiguous."""
    b = shapely.bounds(geoms)
    wraps = (b[:, 2] - b[:, 0]) > 180
    out = geoms.copy()
    for i in np.flatnonzero(wraps):
        out[i] = shapely.transform(
            geoms[i], lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360,
                                                           xy[:, 0]), xy[:, 1]]))
        problems.append(Problem(labels[i], "crosses the antimeridian (180°): western longitudes "
                                "shifted by +360° so the polygon stays whole", "repaired"))
    return out


def _polygonal(g: Any) -> Any:
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    if g.geom_type == "GeometryCollection":
        polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        if polys:
            return shapely.union_all(polys)
    return None


def _check_geometries(raw: gpd.GeoSeries, crs: pyproj.CRS, labels: list[str],
                      options: IngestOptions, problems: list[Problem]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Check and repair each geometry. Returns (geometries in ``crs``, ok mask)."""
    geoms = np.asarray(shapely.force_2d(raw.values), dtype=object)
    n = len(geoms)
    ok = np.ones(n, dtype=bool)
    present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    for i in np.flatnonzero(~present):
        problems.append(Problem(labels[i], "has no geometry (empty or missing)", "error"))
    ok &= present
    if crs.is_geographic and ok.any():
        idx = np.flatnonzero(ok)
        geoms[idx] = _fix_antimeridian(geoms[idx], [labels[i] for i in idx], problems)
    if ok.any():
        idx = np.flatnonzero(ok)
        ok[idx] &= _check_area_of_use(geoms[idx], crs, [labels[i] for i in idx], problems)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return geoms, ok
    ea = equal_area_crs(gpd.GeoSeries(geoms[idx], crs=crs))
    to_ea = pyproj.Transformer.from_crs(crs, ea, always_xy=True)
    from_ea = pyproj.Transformer.from_crs(ea, crs, always_xy=True)
    metric = shapely.transform(geoms[idx], lambda xy: np.column_stack(
        to_ea.transform(xy[:, 0], xy[:, 1])))
    for k, i in enumerate(idx):
        g = metric[k]
        kind = g.geom_type
        if kind in ("Point", "MultiPoint"):
            if options.buffer_m:
                metric[k] = shapely.buffer(g, options.buffer_m, quad_segs=16)
                continue
            problems.append(Problem(labels[i], "is a point, but hazards and releases are areas."
                                    " Pass --buffer-m METRES to turn evidence points into "
                                    "circles, or import polygons.", "error"))
            ok[i] = False
        elif kind in ("LineString", "MultiLineString", "LinearRing"):
            problems.append(Problem(labels[i], f"is a line ({kind}), but an area is expected. "
                                    "If it traces a boundary, turn it into a polygon first "
                                    "(QGIS: Lines to polygons).", "error"))
            ok[i] = False
    # wild vertices: consecutive vertices too far apart (a GPS jump or a typo)
    for k, i in enumerate(idx):
        if not ok[i]:
            continue
        rings: Any = shapely.get_rings(shapely.get_parts(metric[k])) if metric[k].geom_type in (
            "Polygon", "MultiPolygon") else []
        for ring in rings:
            xy = shapely.get_coordinates(ring)
            if len(xy) < 2:
                continue
            seg = np.hypot(*np.diff(xy, axis=0).T)
            j = int(np.argmax(seg))
            if seg[j] > options.max_edge_m:
                problems.append(Problem(labels[i], (
                    f"vertices {j + 1} and {j + 2} are {seg[j] / 1000:.1f} km apart (limit "
                    f"{options.max_edge_m / 1000:g} km): a GPS jump or a typo in a coordinate? "
                    "Fix the vertex, or raise the limit with --max-edge-m."), "error"))
                ok[i] = False
                break
    # validity: repair with make_valid and say so
    for k, i in enumerate(idx):
        if not ok[i]:
            continue
        g = metric[k]
        if not shapely.is_valid(g):
            reason = shapely.is_valid_reason(g)
            fixed = _polygonal(shapely.make_valid(g))
            if fixed is None or shapely.is_empty(fixed):
                problems.append(Problem(labels[i], f"invalid geometry ({reason}) that leaves no "
                                        "area when repaired", "error"))
                ok[i] = False
                continue
            problems.append(Problem(labels[i], f"invalid geometry ({reason}), repaired with "
                                    "make_valid", "repaired"))
            metric[k] = fixed
        else:
            poly = _polygonal(g)
            if poly is None:
                problems.append(Problem(labels[i], f"is a {g.geom_type} with no polygon in it",
                                        "error"))
                ok[i] = False
                continue
            metric[k] = poly
        area = shapely.area(metric[k])
        if area < 0.01:
            problems.append(Problem(labels[i], f"is degenerate: its area is {area:.3g} m² "
                                    "(collapsed or repeated vertices)", "error"))
            ok[i] = False
    keep = [k for k, i in enumerate(idx) if ok[i]]
    if keep:
        back = shapely.transform(metric[keep], lambda xy: np.column_stack(
            from_ea.transform(xy[:, 0], xy[:, 1])))
        geoms[idx[keep]] = back
    return geoms, ok


def _duplicate_geometries(geoms: np.ndarray, ok: np.ndarray, labels: list[str],
                          problems: list[Problem]) -> None:
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return
    wkb = shapely.to_wkb(shapely.normalize(geoms[idx]), output_dimension=2)
    first: dict[bytes, int] = {}
    for k, w in zip(idx.tolist(), wkb, strict=True):
        if w in first:
            problems.append(Problem(labels[k], f"has the same geometry as {labels[first[w]]}; "
                                    "both are kept and the land is counted once", "warning"))
        else:
            first[w] = k


# ----------------------------------------------------------------------------- preparing


def prepare(raw: gpd.GeoDataFrame, kind: LayerName, programme: Programme, *, source: str,
            options: IngestOptions | None = None, existing_ids: set[str] | None = None
            ) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Map columns, check and repair every feature, and reproject to the store CRS.

    Parameters
    ----------
    raw : GeoDataFrame
        Features as read by :func:`read_file`.
    kind : {"hazards", "releases"}
        Which layer they are for.
    programme : Programme
        Gives the EIF date (for ``found_after_eif``) and the store CRS.
    source : str
        File name, used in messages and kept in ``source_file``.
    options : IngestOptions
        CRS, column mapping and defaults.
    existing_ids : set of str
        Ids already in the store (a clash is an error).

    Returns
    -------
    (GeoDataFrame, list of Problem)
        The features ready for :meth:`Store.add`, and the repairs and warnings.

    Raises
    ------
    CRSMissingError
        The file has no CRS and none was given.
    ValidationError
        With every problem of every feature, when any feature cannot be imported.
    """
    options = options or IngestOptions()
    existing_ids = existing_ids or set()
    problems: list[Problem] = []
    today = options.today or dt.date.today()

    crs_read = raw.crs
    if raw.attrs.get("crs_note") and options.crs is None:
        problems.append(Problem("file", raw.attrs["crs_note"], "warning"))
    if options.crs is not None:
        try:
            crs = pyproj.CRS.from_user_input(options.crs)
        except pyproj.exceptions.CRSError as exc:
            raise InputError(f"{source}: --crs {options.crs!r} is not a CRS PROJ knows "
                             "(use a code like EPSG:32648).") from exc
        if crs_read is not None and not pyproj.CRS(crs_read).equals(crs):
            problems.append(Problem("file", f"the file says its CRS is {crs_read.name}, but "
                                    f"--crs {options.crs} was given and is used", "warning"))
    elif crs_read is not None:
        crs = pyproj.CRS(crs_read)
    else:
        raise CRSMissingError(
            f"{source}: no coordinate system is given (a shapefile without its .prj file, or "
            "a CSV of x/y or WKT), so planner cannot place it on Earth. Pass --crs with the "
            "system the data was collected in, e.g. --crs EPSG:32648 for UTM zone 48N or "
            "--crs EPSG:4326 for GPS latitude/longitude. Nothing was imported.")

    df = raw.reset_index(drop=True)
    missing = [c for v in options.column_map.values() for c in v.split(",")
               if c.strip() and c.strip() not in df.columns]
    if missing:
        raise InputError(f"{source}: --map names column(s) {', '.join(missing)} that the file "
                         f"does not have. Its columns are: {', '.join(map(str, df.columns))}.")
    unknown_targets = set(options.column_map) - {c.name for c in COLUMNS[kind]}
    if unknown_targets:
        raise InputError(f"{source}: --map targets {', '.join(sorted(unknown_targets))} are not "
                         f"{kind} columns. Use: "
                         f"{', '.join(c.name for c in COLUMNS[kind] if c.name != 'import_id')}.")
    attr_cols = [c for c in df.columns if c != df.geometry.name]
    values: dict[str, pd.Series] = {}
    given = {"status": options.status, "method": options.method,
             "recorded_on": options.recorded_on, "released_on": options.released_on}
    for column in COLUMNS[kind]:
        if column.name in options.column_map and not options.column_map[column.name].strip():
            continue  # `--map hazard_id=`: use no column (ids are generated)
        if given.get(column.name) is not None and column.name not in options.column_map:
            continue  # a value given for all rows wins over a column found by its name
        cands = _candidates(attr_cols, column.name, options.column_map)
        if cands:
            values[column.name] = _coalesce(df, cands)
    id_col = ID_COLUMN[kind]
    ids = values.get(id_col)
    stem = Path(source).stem
    if ids is None:
        ids = pd.Series([f"{stem}-{i + 1:05d}" for i in range(len(df))], dtype=object)
        problems.append(Problem("file", f"no id column found, ids made from the file name "
                                f"({ids.iloc[0] if len(ids) else stem}, …). Map one with "
                                f"--map {id_col}=COLUMN to keep your own codes.", "warning"))
    id_values: list[str | None] = [None if _is_blank(v) else str(v).strip() for v in ids]
    labels = [_feature_label(i, id_values[i]) for i in range(len(df))]

    # a required field with neither a column nor a value for all rows: say so once
    needed = {"hazards": (("status", "--status SHA|CHA"), ("recorded_on", "--recorded-on DATE")),
              "releases": (("method", "--method cancelled|reduced|cleared"),
                           ("released_on", "--released-on DATE"))}[kind]
    for name, flag in needed:
        if name not in values and given[name] is None:
            problems.append(Problem("file", (
                f"no {name} column found among {', '.join(map(str, attr_cols)) or 'no columns'}."
                f" Map one with --map {name}=COLUMN, or give one value for all rows with "
                f"{flag}"), "error"))
            values[name] = pd.Series(["\0missing"] * len(df), dtype=object)

    out: dict[str, list[Any]] = {c.name: [] for c in COLUMNS[kind]}
    seen: dict[str, int] = {}
    for i in range(len(df)):
        label = labels[i]
        ident = id_values[i]
        if ident is None:
            problems.append(Problem(label, f"has no {id_col}", "error"))
        elif ident in seen:
            problems.append(Problem(label, f"{id_col} {ident!r} is used twice in this file "
                                    f"(also {labels[seen[ident]]}); ids must be unique", "error"))
        elif ident in existing_ids:
            problems.append(Problem(label, f"{id_col} {ident!r} is already in the store; ids "
                                    "must be unique", "error"))
        else:
            seen[ident] = i
        out[id_col].append(ident)
        _prepare_attributes(kind, i, label, values, options, programme, today, out, problems)

    geoms, ok = _check_geometries(df.geometry.set_crs(crs, allow_override=True), crs, labels,
                                  options, problems)
    _duplicate_geometries(geoms, ok, labels, problems)
    if any(p.severity == "error" for p in problems):
        raise ValidationError(source, problems)

    out["source_file"] = [source] * len(df)
    out["import_id"] = [0] * len(df)
    geo = gpd.GeoSeries(geoms, crs=crs).to_crs(programme.pyproj_crs)
    multi = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in geo]
    features = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(multi, crs=programme.crs),
                                crs=programme.crs)
    return features, problems


def _prepare_attributes(kind: LayerName, i: int, label: str, values: dict[str, pd.Series],
                        options: IngestOptions, programme: Programme, today: dt.date,
                        out: dict[str, list[Any]], problems: list[Problem]) -> None:
    def get(name: str) -> Any:
        s = values.get(name)
        return None if s is None else s.iloc[i]

    def reported(name: str) -> bool:  # missing for the whole file, reported once already
        return get(name) == "\0missing"

    def date_of(name: str, default: dt.date | None, flag: str) -> dt.date | None:
        v = get(name)
        if reported(name):
            return None
        if _is_blank(v):
            if default is None:
                problems.append(Problem(label, f"has no {name}. Map a date column with --map "
                                        f"{name}=COLUMN or give one date with {flag}", "error"))
            return default
        d = parse_date(v)
        if d is None:
            problems.append(Problem(label, f"{name} {v!r} is not a date planner can read "
                                    "(write it as YYYY-MM-DD)", "error"))
        elif d > today:
            problems.append(Problem(label, f"{name} {d.isoformat()} is in the future", "error"))
        return d

    def vocabulary(name: str, default: str | None, spellings: dict[str, str],
                   allowed: tuple[str, ...], flag: str) -> str | None:
        v = get(name)
        if reported(name):
            return None
        if _is_blank(v):
            v = default
        if v is None:
            problems.append(Problem(label, f"has no {name}. Map a column with --map "
                                    f"{name}=COLUMN or give one for all rows with {flag} "
                                    f"({'|'.join(allowed)})", "error"))
            return None
        norm = spellings.get(norm_key(str(v)))
        if norm is None:
            problems.append(Problem(label, f"{name} {v!r} is not one of {', '.join(allowed)}",
                                    "error"))
        return norm

    def text(name: str) -> str | None:
        v = get(name)
        return None if _is_blank(v) else str(v).strip()

    def number(name: str, cast: Callable[[Any], Any]) -> Any:
        v = get(name)
        if _is_blank(v):
            return None
        try:
            return cast(float(str(v).replace(",", ".")))
        except ValueError:
            problems.append(Problem(label, f"{name} {v!r} is not a number", "warning"))
            return None

    if kind == "hazards":
        out["status"].append(vocabulary("status", options.status, STATUS_SPELLINGS, STATUSES,
                                        "--status"))
        recorded = date_of("recorded_on", options.recorded_on, "--recorded-on")
        out["recorded_on"].append(recorded)
        after = _parse_bool(get("found_after_eif"))
        if after is None:
            after = recorded is not None and recorded > programme.eif
        out["found_after_eif"].append(after)
        out["region"].append(text("region"))
        out["munition_type"].append(text("munition_type"))
    else:
        out["method"].append(vocabulary("method", options.method, METHOD_SPELLINGS, METHODS,
                                        "--method"))
        out["released_on"].append(date_of("released_on", options.released_on,
                                          "--released-on"))
        out["hazard_id"].append(text("hazard_id"))
        out["organisation"].append(text("organisation"))
        out["items_destroyed"].append(number("items_destroyed", int))
        out["depth_cm"].append(number("depth_cm", float))


# ----------------------------------------------------------------------------- importing


def ingest(store: Store, kind: LayerName, path: str | Path,
           options: IngestOptions | None = None) -> IngestResult:
    """Read, check and add one file to a store, all or nothing.

    Parameters
    ----------
    store : Store
        Where the features go.
    kind : {"hazards", "releases"}
        Which layer.
    path : str or Path
        The survey file.
    options : IngestOptions
        How to read it.

    Returns
    -------
    IngestResult

    Raises
    ------
    DuplicateImportError
        The same file was imported before.
    CRSMissingError, ValidationError, InputError
        With the reason and the fix; the store is unchanged.
    """
    options = options or IngestOptions()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    digest = sha256_of(path)
    previous = store.find_import(digest)
    if previous is not None:
        raise DuplicateImportError(
            f"{path.name}: this file was already imported into {kind} on "
            f"{previous['imported_at']} (import {previous['import_id']}, as "
            f"{previous['file_name']}); nothing was added.")
    programme = store.programme()
    raw = read_file(path, layer=options.layer, limits=options.archive_limits)
    if len(raw) == 0:
        raise InputError(f"{path.name}: the file has no features; nothing was imported.")
    if options.max_vertices is not None:
        vertices = int(shapely.get_num_coordinates(np.asarray(raw.geometry.values)).sum())
        if vertices > options.max_vertices:
            raise TooLargeError(
                f"{path.name}: {vertices:,} vertices, more than the limit of "
                f"{options.max_vertices:,}; nothing was imported. Split the file, or simplify "
                "the polygons in your GIS (a tolerance of 0.5 m keeps every survey detail).")
    try:
        features, problems = prepare(raw, kind, programme, source=path.name, options=options,
                                     existing_ids=store.ids(kind))
    except ValidationError as exc:
        _raise_if_landed_meanwhile(store, digest, kind, path.name, exc)
        raise
    record = ImportRecord(
        layer=kind, file_name=path.name, sha256=digest,
        crs_read=raw.crs.to_string() if raw.crs is not None else None,
        crs_given=options.crs, rows=len(features),
        warnings=[str(p) for p in problems],
        imported_at=dt.datetime.now(dt.UTC).replace(microsecond=0))
    try:
        import_id = store.add(kind, features, record)
    except InputError as exc:   # ids taken by an import that landed while this one was read
        _raise_if_landed_meanwhile(store, digest, kind, path.name, exc)
        raise
    features["import_id"] = import_id
    return IngestResult(import_id=import_id, features=features, problems=problems,
                        record=record)


def _raise_if_landed_meanwhile(store: Store, digest: str, kind: str, name: str,
                               exc: Exception) -> None:
    """Report a concurrent upload of the very same file as a duplicate, not as id clashes."""
    landed = store.find_import(digest)
    if landed is not None:
        raise DuplicateImportError(
            f"{name}: the same file was imported into {kind} a moment ago (import "
            f"{landed['import_id']}); nothing was added.") from exc
