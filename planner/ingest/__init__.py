"""Check and repair every feature of a survey file, and add them to a store in one piece.

Column names are mapped to planner's model from common spellings
(:mod:`planner.io.columns`), or from a mapping the user passes. Every check runs on every
feature before anything is written, and *all* problems are reported together
(:class:`planner.errors.ValidationError`), repairs and warnings included. Repairs (invalid
rings fixed with ``make_valid``, features crossing the antimeridian) are made and reported. An
import is all-or-nothing and a file already imported (same sha256) is refused.
"""

from planner.ingest.attributes import parse_date
from planner.ingest.options import IngestOptions, StoreFacts, store_facts
from planner.ingest.prepare import prepare
from planner.ingest.resurvey import ingest_resurvey
from planner.ingest.transaction import IngestResult, ingest, retract_import
from planner.io.archives import ArchiveLimits, safe_extract
from planner.io.readers import read_file

__all__ = ["ArchiveLimits", "IngestOptions", "IngestResult", "StoreFacts", "ingest",
           "ingest_resurvey",
           "parse_date", "prepare", "read_file", "retract_import", "safe_extract", "store_facts"]
