"""The exceptions planner raises.

Every error derives from :class:`PlannerError` and its message says what went wrong *and*
what the user can do about it. The web layer maps these classes to HTTP status codes in one
table (``planner.web.errors``); the CLI prints the message and exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "repaired"]


class PlannerError(Exception):
    """Root of every error planner raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong and how to fix it, in words that name no CLI flag and no HTTP code.
    argument : str, optional
        The input concerned, by its name in planner's core API (``"crs"``, ``"layer"``,
        ``"released_on"``, ``"store"``...). Each face renders it its own way: the CLI as its
        flag (``--crs``), the web as its form field.

    Examples
    --------
    >>> err = InputError("the file does not say its coordinate system", argument="crs")
    >>> err.argument, isinstance(err, ValueError)
    ('crs', True)
    """

    def __init__(self, message: str = "", *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class InputError(PlannerError, ValueError):
    """An input file or argument cannot be used as given."""


class CRSMissingError(InputError):
    """The coordinate reference system of an input is unknown."""


class UnsupportedFormatError(InputError):
    """The file is not a geodata format planner reads."""


class LayerChoiceError(InputError):
    """A file holds several layers and the user must choose one."""


class TooLargeError(InputError):
    """An upload, an archive or a geometry is bigger than the configured limit."""


class AuthError(PlannerError):
    """No valid API token was given (HTTP 401)."""


class ForbiddenError(PlannerError):
    """The token is valid but its role may not do this (HTTP 403)."""


class NotFoundError(PlannerError):
    """The thing asked for does not exist (HTTP 404)."""


class DuplicateImportError(PlannerError):
    """The same file (same sha256) was already imported into the store."""


class StoreError(PlannerError, OSError):
    """The store cannot be opened, created or written."""


class StoreNotFoundError(StoreError):
    """The store does not exist yet."""


class StoreBusyError(StoreError):
    """Another writer held the store for longer than planner waits; nothing was written.

    The operation can simply be tried again (the web answers 503 with ``Retry-After``).
    """


@dataclass(frozen=True)
class Problem:
    """One problem found in one feature (or in the file as a whole).

    Parameters
    ----------
    feature : str
        Which feature: ``"row 12 (id H-0012)"``, or ``"file"`` for the whole file.
    message : str
        What is wrong and how to fix it.
    severity : {"error", "warning", "repaired"}
        ``error`` blocks the import; ``repaired`` means planner fixed it and says how;
        ``warning`` is worth a look but changes nothing.
    argument : str, optional
        The input that fixes it, by its core name (``"crs"``, ``"buffer_m"``...); each face
        names it its own way (a CLI flag, a form field).
    """

    feature: str
    message: str
    severity: Severity = "error"
    argument: str | None = None

    def __str__(self) -> str:
        return f"{self.feature}: {self.message}"


class ValidationError(InputError):
    """A file has features that cannot be imported. Carries *every* problem found.

    Examples
    --------
    >>> err = ValidationError("survey.zip", [Problem("row 3", "empty geometry")])
    >>> print(err)
    survey.zip: 1 problem, nothing was imported:
      - row 3: empty geometry
    """

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        n = len(errors)
        lines = [f"{source}: {n} problem{'s' if n != 1 else ''}, nothing was imported:"]
        lines += [f"  - {p}" for p in errors]
        super().__init__("\n".join(lines))
