"""Which reader may open which file: the name's extension decides, the content must agree.

GDAL chooses a driver from a file's *content*, so a GDAL VRT document named ``x.geojson``
would be opened as a VRT, and a VRT can read any local file (``CSV:/etc/passwd``) or fetch a
URL (``/vsicurl/``). planner therefore never lets GDAL guess:

* each extension has an allow-list of drivers (:data:`ALLOWED_DRIVERS`);
* before GDAL sees a file, its first bytes must look like that format
  (:func:`check_signature`): ``{`` for GeoJSON, the SQLite header with the GeoPackage
  application id for GeoPackage, the shapefile file code for ``.shp``, an XML document whose
  root element is ``kml`` for KML;
* where GDAL has a prefix that forces a driver (``GeoJSON:``, ``GPKG:``), the file is opened
  through it (:func:`gdal_path`);
* after opening, the driver GDAL used must be on the allow-list (:func:`check_driver`).

Only plain local paths are opened: a name beginning with ``/vsi`` or holding ``://`` is
refused, so no network or virtual file system is reached from a user-given name.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from pathlib import Path

from planner.errors import UnsupportedFormatError

#: The GDAL drivers allowed for each file extension (lower case, with the dot).
ALLOWED_DRIVERS: dict[str, tuple[str, ...]] = {
    ".geojson": ("GeoJSON",),
    ".json": ("GeoJSON",),
    ".gpkg": ("GPKG",),
    ".shp": ("ESRI Shapefile",),
    ".kml": ("KML", "LIBKML"),
}

#: GDAL connection prefixes that force one driver.
_PREFIX = {".geojson": "GeoJSON:", ".json": "GeoJSON:", ".gpkg": "GPKG:"}

_FORMAT_NAMES = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
                 ".shp": "shapefile", ".kml": "KML"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
_SHP_FILE_CODE = b"\x00\x00\x27\x0a"
_HEAD_BYTES = 65_536


class _RootFoundError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _kml_root(head: bytes) -> str | None:
    """Local name of the root element of an XML document's first bytes, or None."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def start(name: str, attrs: object) -> None:
        raise _RootFoundError(name.rsplit(" ", 1)[-1])

    parser.StartElementHandler = start
    try:
        parser.Parse(head, False)
    except _RootFoundError as found:
        return found.name
    except xml.parsers.expat.ExpatError:
        return None
    return None


def _refuse(display: str, suffix: str, what: str) -> UnsupportedFormatError:
    name = _FORMAT_NAMES.get(suffix, suffix)
    return UnsupportedFormatError(
        f"{display}: named {suffix} but its content is not {name} ({what}). Export the layer "
        f"again from your GIS as {name}, or name the file after its real format.",
        argument="file")


def check_local_path(path: Path, display: str) -> None:
    """Refuse names that would make GDAL reach a network or virtual file system."""
    text = str(path)
    if text.startswith("/vsi") or "://" in text or re.match(r"^[A-Za-z_ ]{2,}:", text):
        raise UnsupportedFormatError(
            f"{display}: planner reads local files only, not GDAL connection strings or URLs. "
            "Download the file first.", argument="file")


def check_signature(path: Path, display: str) -> None:
    """Refuse a file whose first bytes are not the format its extension names.

    Parameters
    ----------
    path : Path
        The file, with one of the extensions of :data:`ALLOWED_DRIVERS`.
    display : str
        The name to show in messages (never a server path).

    Raises
    ------
    UnsupportedFormatError
        The content is of another format (e.g. a GDAL VRT named ``.geojson``).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.geojson"
    >>> _ = p.write_text('<OGRVRTDataSource><OGRVRTLayer name="a"/></OGRVRTDataSource>')
    >>> try:
    ...     check_signature(p, "x.geojson")
    ... except UnsupportedFormatError as exc:
    ...     print(str(exc)[:60])
    x.geojson: named .geojson but its content is not GeoJSON (it
    """
    suffix = path.suffix.lower()
    if suffix not in ALLOWED_DRIVERS:
        raise UnsupportedFormatError(f"{display}: {suffix or 'no extension'} is not a format "
                                     "planner reads.", argument="file")
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    if suffix in (".geojson", ".json"):
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if not text.startswith(b"{"):
            raise _refuse(display, suffix, "it does not begin with '{'")
    elif suffix == ".gpkg":
        if not head.startswith(_SQLITE_MAGIC):
            raise _refuse(display, suffix, "it is not an SQLite database")
        if head[68:72] not in _GPKG_APPLICATION_IDS:
            raise _refuse(display, suffix, "an SQLite database, but not a GeoPackage")
    elif suffix == ".shp":
        if not head.startswith(_SHP_FILE_CODE):
            raise _refuse(display, suffix, "it lacks the shapefile file code")
    elif suffix == ".kml":
        root = _kml_root(head)
        if root != "kml":
            what = ("it is not XML" if root is None
                    else f"its root element is <{root}>, not <kml>")
            raise _refuse(display, suffix, what)


def gdal_path(path: Path) -> str:
    """The connection string that makes GDAL open ``path`` with its allowed driver only."""
    return _PREFIX.get(path.suffix.lower(), "") + str(path)


def check_driver(driver: str, path: Path, display: str) -> None:
    """Refuse a file GDAL opened with a driver not allowed for its extension."""
    suffix = path.suffix.lower()
    if driver not in ALLOWED_DRIVERS.get(suffix, ()):
        raise _refuse(display, suffix, f"GDAL reads it as {driver}")
