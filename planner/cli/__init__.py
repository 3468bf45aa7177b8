"""The ``planner`` command: a few lines per command over one core call each.

Commands are grouped by area: :mod:`~planner.cli.ingest`, :mod:`~planner.cli.figures`,
:mod:`~planner.cli.treaty`, :mod:`~planner.cli.field`, :mod:`~planner.cli.service`; the Typer
app, shared options and error rendering live in :mod:`~planner.cli.shared`.
"""

from __future__ import annotations

import logging
import uuid

from planner.cli import field, figures, ingest, records, service, treaty  # noqa: F401 - registers
from planner.cli.shared import app, err

__all__ = ["app", "main"]


def main() -> None:
    """Run the CLI: errors planner did not foresee print an id and a line, not a traceback.

    The traceback goes to the log (shown with ``-v``), under the same id.
    """
    try:
        app()
    except Exception as exc:  # a bug or an environment failure, not the user's input
        incident = uuid.uuid4().hex[:8]
        logging.getLogger("planner").info("internal error %s", incident, exc_info=True)
        err.print(f"internal error (id {incident}): {type(exc).__name__}. Nothing was written "
                  "unless the output above says so. Run again with -v for details, and report "
                  "it with the id.", markup=False, highlight=False)
        raise SystemExit(1) from None
