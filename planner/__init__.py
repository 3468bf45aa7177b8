"""planner: ingest, account for and plan the clearance of cluster-munition-contaminated land.

The public API, one call per operation (each face — the CLI, the web, the notebooks — calls
these and nothing else)::

    import planner
    store = planner.open_store("demo.gpkg")
    status = planner.verified_status(store, datetime.date(2024, 12, 31), verify=True)
    draft = planner.draft_extension_request(store)

Names are imported on first use, so ``import planner`` stays light.

Examples
--------
>>> import planner
>>> planner.verified_status.__module__, planner.PlannerError.__name__
('planner.accounting.engines', 'PlannerError')
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "PlannerError": "planner.errors",
    "InputError": "planner.errors",
    "StoreError": "planner.errors",
    "Programme": "planner.programme",
    "open_store": "planner.store",
    "create_store": "planner.store",
    "copy_store": "planner.store",
    "ingest": "planner.ingest",
    "IngestOptions": "planner.ingest",
    "read_file": "planner.ingest",
    "ledger_with": "planner.accounting",
    "verified_status": "planner.accounting",
    "status_direct": "planner.accounting",
    "deadline_report": "planner.treaty",
    "forecast": "planner.treaty",
    "Scenario": "planner.treaty",
    "draft_extension_request": "planner.treaty",
    "article7_report": "planner.treaty",
    "plan_remaining": "planner.field.marking",
    "Selection": "planner.field.marking",
    "MarkingOptions": "planner.field.marking",
    "write_document": "planner.documents",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'planner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
