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
import lzma
import re
import stat
import tempfile
import unicodedata
import warnings
import zipfile
import zlib
from collections import Counter
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

from planner import formats
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
#: Dates before this are refused: spreadsheets export an empty date cell as 1899-12-30/31.
EARLIEST_DATE = dt.date(1900, 1, 1)
#: Features farther than this from the programme's other data are reported [km].
FAR_FROM_DATA_KM = 100.0
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
    archive_limits : ArchiveLimits
        Limits applied to zip archives before unpacking.
    encoding : str, optional
        Text encoding of a shapefile's attributes (when it has no .cpg) or of a CSV; detected
        and reported when not given.
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
    encoding: str | None = None


@dataclass(frozen=True)
class StoreFacts:
    """What a new file is checked against in its store.

    Parameters
    ----------
    ids : set of str
        Ids already in the layer (a clash is an error).
    first_record_on : datetime.date, optional
        The earliest date recorded in the programme (an earlier date is reported).
    extent_lonlat : (float, float, float, float), optional
        West, south, east, north of the programme's data [degrees, WGS 84]; features far
        outside it are reported (a wrong UTM zone moves data by hundreds of kilometres).
    """

    ids: set[str] = field(default_factory=set)
    first_record_on: dt.date | None = None
    extent_lonlat: tuple[float, float, float, float] | None = None


def store_facts(store: Store, kind: LayerName) -> StoreFacts:
    """The ids, first date and extent of a store's data, for checking a new file."""
    dated: tuple[tuple[LayerName, str], ...] = (("hazards", "recorded_on"),
                                                ("releases", "released_on"))
    frames = {layer: store.attributes(layer, [date]) for layer, date in dated}
    dates = [d for layer, date in dated for d in frames[layer][date].dropna()]
    boxes = np.vstack([f[["minx", "miny", "maxx", "maxy"]].to_numpy(dtype=float)
                       for f in frames.values()])
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    extent = None
    if len(boxes):
        crs = store.programme().pyproj_crs
        outline = shapely.box(boxes[:, 0].min(), boxes[:, 1].min(),
                              boxes[:, 2].max(), boxes[:, 3].max())
        ll = _ll_bounds(np.array([shapely.segmentize(outline, outline.length / 64)]), crs)[0]
        if np.isfinite(ll).all():
            extent = (float(ll[0]), float(ll[1]), float(ll[2]), float(ll[3]))
    first = pd.Timestamp(min(dates)).date() if dates else None
    return StoreFacts(ids=store.ids(kind), first_record_on=first,
                      extent_lonlat=extent)


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


_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


def _archive_problems(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[str]:
    """Every reason not to unpack an archive, found from its directory alone."""
    bad: list[str] = []
    declared = 0
    seen: set[str] = set()
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.filename.startswith(("/", "\\")) or (parts and ":" in parts[0]):
            bad.append(f"{info.filename!r} is an absolute path")
        elif ".." in parts:
            bad.append(f"{info.filename!r} points outside the archive (..)")
        if stat.S_ISLNK(info.external_attr >> 16):
            bad.append(f"{info.filename!r} is a symbolic link")
        if info.flag_bits & 0x1:
            bad.append(f"{info.filename!r} is encrypted: zip the files again without a password")
        if info.compress_type not in _ZIP_METHODS:
            bad.append(f"{info.filename!r} is compressed with method {info.compress_type} "
                       "(e.g. Deflate64), which planner cannot unpack: zip the files again "
                       "with the standard method (deflate)")
        key = info.filename.replace("\\", "/").rstrip("/")
        if key in seen and not info.is_dir():
            bad.append(f"{info.filename!r} appears twice in the archive: keep one of them")
        seen.add(key)
        declared += info.file_size
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            bad.append(f"{info.filename!r} unpacks {info.file_size / info.compress_size:.0f}"
                       f" times its packed size (limit {limits.max_ratio:.0f}): zip bomb?")
    if declared > limits.max_total_bytes:
        bad.append(f"unpacks to {declared / 1e6:.0f} MB, more than the limit of "
                   f"{limits.max_total_bytes / 1e6:.0f} MB")
    return bad


def safe_extract(archive: Path, dest: Path, limits: ArchiveLimits | None = None,
                 display: str | None = None) -> list[Path]:
    """Unpack a zip archive after checking it cannot escape ``dest`` or explode.

    Refuses absolute paths and ``..`` (zip-slip), symbolic links, encrypted members,
    compression methods Python cannot unpack (Deflate64), member names given twice, too many
    members, and archives whose unpacked size or compression ratio is beyond ``limits`` (zip
    bombs); every reason is reported at once. Sizes are checked against the bytes actually
    written, not only the archive's own claims; a damaged member (bad CRC) is refused.

    Returns the paths of the files written.
    """
    limits = limits or ArchiveLimits()
    name = display or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise UnsupportedFormatError(
            f"{name}: not a readable zip archive ({_scrub(exc, archive, name)}). Upload a .zip "
            "made by your GIS or file manager, or the unzipped .shp/.gpkg/.geojson/.kml "
            "file.", argument="file") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise InputError(f"{name}: {len(infos)} files in the archive, more than the limit "
                             f"of {limits.max_members}. Zip only the survey layers.",
                             argument="file")
        bad = _archive_problems(infos, limits)
        if bad:
            raise InputError(f"{name}: unsafe or unreadable archive, nothing was unpacked:\n  - "
                             + "\n  - ".join(bad), argument="file")
        written: list[Path] = []
        total = 0
        root = dest.resolve()
        for info in infos:
            if info.is_dir():
                continue
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root):
                raise InputError(f"{name}: {info.filename!r} points outside the archive.",
                                 argument="file")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, target.open("wb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        total += len(chunk)
                        if total > limits.max_total_bytes:
                            raise InputError(f"{name}: unpacks to more than the limit of "
                                             f"{limits.max_total_bytes / 1e6:.0f} MB: zip bomb?",
                                             argument="file")
                        out.write(chunk)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError,
                    zlib.error, lzma.LZMAError, OSError) as exc:
                raise InputError(
                    f"{name}: {info.filename!r} is damaged and cannot be unpacked "
                    f"({_scrub(exc, archive, name)}). Zip the files again and upload the new "
                    "archive.", argument="file") from exc
            written.append(target)
    return written


_TMP_PATH = re.compile(r"(?:/private)?(?:/tmp|/var/tmp|/var/folders/[^\s'\"]*?)/planner-[^\s'\"/]*"
                       r"(?:/[^\s'\"]*)?")


def _scrub(exc: BaseException | str, path: Path, display: str) -> str:
    """An error text with the server's paths replaced by the name the user knows."""
    text = str(exc).replace(str(path), display)
    text = text.replace(str(path.resolve()), display)
    return _TMP_PATH.sub(display, text)


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


#: The code pages a DBF without .cpg is tested against (Windows and DOS code pages of the
#: languages of mine-affected countries); UTF-8 is tried first, on its own.
DBF_ENCODINGS = ("cp1252", "cp1251", "cp1250", "cp1253", "cp1254", "cp1255", "cp1256",
                 "cp1257", "cp1258", "cp874", "cp866", "cp850", "cp437", "koi8_r")


def _plausibility(text: str) -> float:
    """How much a decoded text looks like words of one script [0, 1].

    Text decoded with the wrong code page shows letters of one script in words of another
    (``Rйgion``) or words made only of accented Latin letters (``Ñèåíãêõóàíã``). Real text in
    a Latin script has few non-ASCII letters per word; in another script, mostly those.

    Examples
    --------
    >>> raw = "Сиенгкхуанг Région".encode("cp1251", errors="replace")
    >>> _plausibility("Сиенгкхуанг") > _plausibility(raw.decode("cp1252"))
    True
    """
    letters = [ch for ch in text if ch.isalpha() and not ch.isascii()]
    if not letters:
        return 1.0
    scripts = Counter(unicodedata.name(ch, "UNKNOWN ?").split()[0] for ch in letters)
    dominant, count = scripts.most_common(1)[0]
    purity = count / len(letters)
    words = [w for w in re.findall(r"[^\W\d_]+", text) if not w.isascii()]
    share = float(np.mean([sum(not c.isascii() for c in w) / len(w) for w in words]))
    fits = share <= 0.5 if dominant == "LATIN" else share > 0.5
    replaced = text.count("\ufffd") / max(len(text), 1)
    return purity * (1.0 if fits else 0.3) * (1.0 - replaced)


def _dbf_text_sample(dbf: Path, max_bytes: int = 4_000_000) -> tuple[int, bytes]:
    """The language driver byte of a DBF file and the raw bytes of its text fields."""
    with dbf.open("rb") as f:
        head = f.read(32)
        if len(head) < 32:
            return 0, b""
        ldid = head[29]
        n_records = int.from_bytes(head[4:8], "little")
        header_len = int.from_bytes(head[8:10], "little")
        record_len = int.from_bytes(head[10:12], "little")
        fields: list[tuple[int, int]] = []   # (offset in record, length) of C fields
        offset = 1   # the deletion flag
        descriptors = f.read(max(header_len - 32, 0))
        for k in range(0, len(descriptors) - 31, 32):
            d = descriptors[k:k + 32]
            if d[0] == 0x0D:
                break
            length = d[16]
            if d[11:12] == b"C":
                fields.append((offset, length))
            offset += length
        if not fields or record_len <= 0:
            return ldid, b""
        f.seek(header_len)
        chunks: list[bytes] = []
        size = 0
        for _ in range(n_records):
            rec = f.read(record_len)
            if len(rec) < record_len or size > max_bytes:
                break
            for off, length in fields:
                cell = rec[off:off + length].rstrip(b" \x00")
                if cell:
                    chunks.append(cell)
                    size += len(cell)
    return ldid, b"\n".join(chunks)


def _shapefile_encoding(path: Path, display: str, given: str | None
                        ) -> tuple[str | None, list[tuple[int | None, str, str, str | None]]]:
    """The text encoding to read a shapefile's DBF with, and a note when it was detected.

    A ``.cpg`` file or the DBF's language driver byte says it: GDAL reads those. Without
    either, GDAL would read the bytes as Latin-1 and turn any other encoding into garbage, so
    the encoding is detected from the text (UTF-8 if it decodes, else the code page of
    :data:`DBF_ENCODINGS` whose decoding looks most like words, :func:`_plausibility`) and
    the user is told.
    """
    if given is not None:
        return given, []
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()),
               None)
    has_cpg = any(path.with_suffix(e).exists() for e in (".cpg", ".CPG"))
    if dbf is None or has_cpg:
        return None, []
    ldid, sample = _dbf_text_sample(dbf)
    if ldid != 0 or not sample or sample.isascii():
        return None, []
    try:
        sample.decode("utf-8")
        encoding = "UTF-8"
    except UnicodeDecodeError:
        scores = {e: _plausibility(sample.decode(e, errors="replace")) for e in DBF_ENCODINGS}
        encoding = max(DBF_ENCODINGS, key=lambda e: scores[e])   # ties: earlier in the list
    return encoding, [(None, f"no .cpg file says the text encoding of {display}'s attributes: "
                             f"read as {encoding} (detected from the text). If names look "
                             "wrong, give the encoding (e.g. cp1252, cp1251, UTF-8).",
                       "warning", "encoding")]


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
                       f". These are not {crs.name} degrees: if they are metres, give the "
                       "right projected coordinate system (e.g. the UTM zone).")), "error",
                    "crs"))
                ok[i] = False
                continue
            if min(lon0, lon1) < -180 or max(lon0, lon1) > 360:
                problems.append(Problem(labels[i], f"longitude {lon0:.6g} is outside -180..180"
                                        " (check the coordinate order or the coordinate "
                                        "system)", "error", "crs"))
                ok[i] = False
            continue
        if not np.isfinite(ll[i]).all():
            problems.append(Problem(labels[i], f"coordinates ({raw[i][0]:.6g}, {raw[i][1]:.6g})"
                                    f" cannot be placed on Earth in {crs.name}. Check the "
                                    "coordinate system.", "error", "crs"))
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
                    "are swapped: give the right coordinate system."), "error", "crs"))
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
                                    " Give a buffer radius in metres to turn evidence points "
                                    "into circles, or import polygons.", "error", "buffer_m"))
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
                    "Fix the vertex, or raise the longest-edge limit."), "error", "max_edge_m"))
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
            if g.geom_type == "GeometryCollection" and poly is not None:
                other = [p.geom_type for p in shapely.get_parts(g)
                         if p.geom_type not in ("Polygon", "MultiPolygon")]
                if other:
                    problems.append(Problem(labels[i], (
                        f"a GeometryCollection: its {len(other)} non-polygon part(s) "
                        f"({', '.join(sorted(set(other)))}) were dropped, its polygons kept"),
                        "repaired"))
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


def _far_from_data(geoms: np.ndarray, ok: np.ndarray, crs: pyproj.CRS, labels: list[str],
                   extent: tuple[float, float, float, float] | None,
                   problems: list[Problem]) -> None:
    """Warn when features lie far from the programme's data: the wrong UTM zone, say."""
    idx = np.flatnonzero(ok)
    if extent is None or len(idx) == 0:
        return
    ll = _ll_bounds(geoms[idx], crs)
    lon = (ll[:, 0] + ll[:, 2]) / 2
    lat = (ll[:, 1] + ll[:, 3]) / 2
    w, s, e, n = extent
    if e < w:   # an extent across the antimeridian: not checked
        return
    near_lon = np.clip(lon, w, e)
    near_lat = np.clip(lat, s, n)
    _, _, dist_m = pyproj.Geod(ellps="WGS84").inv(lon, lat, near_lon, near_lat)
    far = np.flatnonzero(np.asarray(dist_m) > FAR_FROM_DATA_KM * 1000)
    if len(far) == 0:
        return
    km = np.asarray(dist_m)[far] / 1000
    examples = ", ".join(labels[idx[k]] for k in far[:3])
    problems.append(Problem("file", (
        f"{len(far)} of {len(idx)} features lie {km.min():,.0f} to {km.max():,.0f} km from the "
        f"programme's other data ({examples}{', …' if len(far) > 3 else ''}). Is the "
        f"coordinate system right? The file is read as {crs.name}; a wrong UTM zone moves "
        "data by hundreds of kilometres."), "warning", "crs"))


# ----------------------------------------------------------------------------- preparing


def prepare(raw: gpd.GeoDataFrame, kind: LayerName, programme: Programme, *, source: str,
            options: IngestOptions | None = None, existing_ids: set[str] | None = None,
            facts: StoreFacts | None = None) -> tuple[gpd.GeoDataFrame, list[Problem]]:
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
    facts : StoreFacts, optional
        The store's ids, first date and extent (see :func:`store_facts`).

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
    facts = facts or StoreFacts()
    existing_ids = (existing_ids or set()) | facts.ids
    problems: list[Problem] = []
    today = options.today or dt.date.today()

    crs_read = raw.crs
    if raw.attrs.get("crs_note") and options.crs is None:
        problems.append(Problem("file", raw.attrs["crs_note"], "warning"))
    if options.crs is not None:
        try:
            crs = pyproj.CRS.from_user_input(options.crs)
        except pyproj.exceptions.CRSError as exc:
            raise InputError(f"{source}: the coordinate system {options.crs!r} is not one PROJ "
                             "knows (use a code like EPSG:32648).", argument="crs") from exc
        if crs_read is not None and not pyproj.CRS(crs_read).equals(crs):
            problems.append(Problem("file", f"the file says its CRS is {crs_read.name}, but "
                                    f"{options.crs} was given and is used", "warning", "crs"))
    elif crs_read is not None:
        crs = pyproj.CRS(crs_read)
    else:
        raise CRSMissingError(
            f"{source}: no coordinate system is given (a shapefile without its .prj file, or "
            "a CSV of x/y or WKT), so planner cannot place it on Earth. Give the system the "
            "data was collected in, e.g. EPSG:32648 for UTM zone 48N or EPSG:4326 for GPS "
            "latitude/longitude. Nothing was imported.", argument="crs")

    df = raw.reset_index(drop=True)
    missing = [c for v in options.column_map.values() for c in v.split(",")
               if c.strip() and c.strip() not in df.columns]
    if missing:
        raise InputError(f"{source}: the column mapping names column(s) {', '.join(missing)} "
                         "that the file does not have. Its columns are: "
                         f"{', '.join(map(str, df.columns))}.", argument="column_map")
    unknown_targets = set(options.column_map) - {c.name for c in COLUMNS[kind]}
    if unknown_targets:
        raise InputError(f"{source}: the column mapping targets "
                         f"{', '.join(sorted(unknown_targets))}, which are not {kind} columns. "
                         "Use: "
                         f"{', '.join(c.name for c in COLUMNS[kind] if c.name != 'import_id')}.",
                         argument="column_map")
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
                                f"({ids.iloc[0] if len(ids) else stem}, …). Map a column to "
                                f"{id_col} to keep your own codes.", "warning", "column_map"))
    id_values: list[str | None] = [None if _is_blank(v) else str(v).strip() for v in ids]
    labels = [_feature_label(i, id_values[i]) for i in range(len(df))]
    for row, message, severity, argument in raw.attrs.get("read_notes", []):
        problems.append(Problem("file" if row is None else labels[row], message, severity,
                                argument))

    # a required field with neither a column nor a value for all rows: say so once
    needed = {"hazards": (("status", "SHA or CHA"), ("recorded_on", "a date")),
              "releases": (("method", "cancelled, reduced or cleared"),
                           ("released_on", "a date"))}[kind]
    for name, what in needed:
        if name not in values and given[name] is None:
            problems.append(Problem("file", (
                f"no {name} column found among {', '.join(map(str, attr_cols)) or 'no columns'}."
                f" Map a column to {name}, or give one value for all rows ({what})"),
                "error", name))
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
        _prepare_attributes(kind, i, label, values, options, programme, today, out, problems,
                            facts.first_record_on)

    geoms, ok = _check_geometries(df.geometry.set_crs(crs, allow_override=True), crs, labels,
                                  options, problems)
    _duplicate_geometries(geoms, ok, labels, problems)
    _far_from_data(geoms, ok, crs, labels, facts.extent_lonlat, problems)
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
                        out: dict[str, list[Any]], problems: list[Problem],
                        first_record: dt.date | None = None) -> None:
    def get(name: str) -> Any:
        s = values.get(name)
        return None if s is None else s.iloc[i]

    def reported(name: str) -> bool:  # missing for the whole file, reported once already
        return get(name) == "\0missing"

    def date_of(name: str, default: dt.date | None) -> dt.date | None:
        v = get(name)
        if reported(name):
            return None
        if _is_blank(v):
            if default is None:
                problems.append(Problem(label, f"has no {name}. Map a date column to {name} or "
                                        "give one date for all rows", "error", name))
            return default
        d = parse_date(v)
        if d is None:
            problems.append(Problem(label, f"{name} {v!r} is not a date planner can read "
                                    "(write it as YYYY-MM-DD)", "error", name))
        elif d > today:
            problems.append(Problem(label, f"{name} {d.isoformat()} is in the future", "error",
                                    name))
        elif d < EARLIEST_DATE:
            problems.append(Problem(label, (
                f"{name} {d.isoformat()} is before {EARLIEST_DATE:%Y}: an empty date cell "
                "exported as the spreadsheet's zero date (30/31 December 1899)? Give the real "
                "date."), "error", name))
        elif first_record is not None and d < first_record:
            problems.append(Problem(label, (
                f"{name} {d.isoformat()} is earlier than any record in the programme (the "
                f"first is {first_record.isoformat()}): check the date"), "warning", name))
        return d

    def vocabulary(name: str, default: str | None, spellings: dict[str, str],
                   allowed: tuple[str, ...]) -> str | None:
        v = get(name)
        if reported(name):
            return None
        if _is_blank(v):
            v = default
        if v is None:
            problems.append(Problem(label, f"has no {name}. Map a column to {name} or give one "
                                    f"for all rows ({'|'.join(allowed)})", "error", name))
            return None
        norm = spellings.get(norm_key(str(v)))
        if norm is None:
            problems.append(Problem(label, f"{name} {v!r} is not one of {', '.join(allowed)}",
                                    "error", name))
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
        out["status"].append(vocabulary("status", options.status, STATUS_SPELLINGS, STATUSES))
        recorded = date_of("recorded_on", options.recorded_on)
        out["recorded_on"].append(recorded)
        after = _parse_bool(get("found_after_eif"))
        if after is None:
            after = recorded is not None and recorded > programme.eif
        out["found_after_eif"].append(after)
        out["region"].append(text("region"))
        out["munition_type"].append(text("munition_type"))
    else:
        out["method"].append(vocabulary("method", options.method, METHOD_SPELLINGS, METHODS))
        out["released_on"].append(date_of("released_on", options.released_on))
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
    formats.check_local_path(path, path.name)
    if not path.exists():
        raise InputError(f"{path}: no such file.", argument="file")
    digest = sha256_of(path)
    previous = store.find_import(digest)
    if previous is not None:
        raise DuplicateImportError(
            f"{path.name}: this file was already imported into {kind} on "
            f"{previous['imported_at']} (import {previous['import_id']}, as "
            f"{previous['file_name']}); nothing was added.")
    programme = store.programme()
    raw = read_file(path, layer=options.layer, limits=options.archive_limits,
                    encoding=options.encoding)
    if len(raw) == 0:
        raise InputError(f"{path.name}: the file has no features; nothing was imported.",
                         argument="file")
    if options.max_vertices is not None:
        vertices = int(shapely.get_num_coordinates(np.asarray(raw.geometry.values)).sum())
        if vertices > options.max_vertices:
            raise TooLargeError(
                f"{path.name}: {vertices:,} vertices, more than the limit of "
                f"{options.max_vertices:,}; nothing was imported. Split the file, or simplify "
                "the polygons in your GIS (a tolerance of 0.5 m keeps every survey detail).")
    try:
        features, problems = prepare(raw, kind, programme, source=path.name, options=options,
                                     facts=store_facts(store, kind))
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
