"""Zip archives unpacked safely: no path outside the folder, no bomb, every reason reported at once.

No library checks all of it (zip-slip, symbolic links, encrypted members, unsupported
compression, duplicate names, member count, unpacked size and ratio), so it is kept here.
"""

from __future__ import annotations

import lzma
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from planner.errors import (
    InputError,
    UnsupportedFormatError,
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits applied to every archive before a byte of it is unpacked.

    Sizes are in bytes [B]. The defaults suit survey exports (tens of MB) with a wide margin.
    """

    max_members: int = 2_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0


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
