"""The text encoding of a shapefile's attributes when no ``.cpg`` file says it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

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
