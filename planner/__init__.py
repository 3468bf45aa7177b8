"""planner: ingest, account for and plan the clearance of cluster-munition-contaminated land.

The core is plain functions over GeoDataFrames (``planner.ingest``, ``planner.accounting``,
``planner.store``); the command line (``planner.cli.shared``) is a thin layer over them.
"""

from planner.errors import PlannerError

__version__ = "0.1.0"
__all__ = ["PlannerError", "__version__"]
