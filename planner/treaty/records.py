"""Documents a delegation files, kept with what they were drawn from, and drawn again.

Each extension request drafted from a store is recorded in it: the instant it was drawn, the
store's version, its arguments (scenario, dates, years) and its figures with their SHA-256.
:func:`reproduce_request` draws it again from the records as they stood at that instant
(imports made by then and not retracted by then, see
:func:`planner.accounting.known.ledger_as_known_on`), checks that the figures are the ones
filed, and lists what changed in the records since.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from planner.accounting.known import ledger_as_known_on
from planner.errors import NotFoundError
from planner.store import Store
from planner.treaty.extension import ExtensionDraft, RequestFigures, draft_extension_request
from planner.treaty.forecast import CapacityLine, Scenario


def figures_of(fig: RequestFigures) -> dict[str, Any]:
    """The figures of a request that a reader checks, as plain values (areas to 1 mm²)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(fig):
        v = getattr(fig, f.name)
        if isinstance(v, float):
            out[f.name] = round(v, 3)
        elif isinstance(v, dt.date):
            out[f.name] = v.isoformat()
        elif isinstance(v, int | str | bool) or v is None:
            out[f.name] = v
    return out


def _digest(figures: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class RequestArguments:
    """What an extension request was asked with: enough to draw it again."""

    scenario: Scenario
    as_of: dt.date | None = None
    group: str | None = None
    years: int | None = None
    verify: bool = True
    as_known_on: dt.date | None = None


def record_request(store: Store, draft: ExtensionDraft, asked: RequestArguments,
                   file_name: str | None) -> int:
    """Keep in the store what a drafted request was drawn from; returns its document id."""
    figures = figures_of(draft.figures)
    arguments = {"scenario": dataclasses.asdict(asked.scenario),
                 "as_of": None if asked.as_of is None else asked.as_of.isoformat(),
                 "group": asked.group, "years": asked.years, "verify": asked.verify,
                 "as_known_on": (None if asked.as_known_on is None
                                 else asked.as_known_on.isoformat())}
    return store.record_document({
        "kind": "extension-request",
        "drawn_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "store_version": json.dumps(list(store.version())),
        "arguments": json.dumps(arguments), "figures": json.dumps(figures, sort_keys=True),
        "figures_sha256": _digest(figures), "file_name": file_name})


@dataclass(frozen=True)
class Reproduction:
    """A recorded document drawn again: the draft, whether its figures are the filed ones,
    and what changed in the records since it was drawn."""

    document_id: int
    draft: ExtensionDraft
    same_figures: bool
    changed: list[str]
    changes_since: list[str]


def reproduce_request(store: Store, document_id: int) -> Reproduction:
    """Draw a recorded extension request again from the records as they stood then."""
    docs = store.documents()
    row = docs[docs["document_id"] == document_id]
    if not len(row):
        raise NotFoundError(f"there is no document {document_id} in this store; `planner "
                            "documents list` lists them", argument="document_id")
    entry = row.iloc[0].to_dict()
    args = json.loads(entry["arguments"])
    drawn_at = dt.datetime.fromisoformat(entry["drawn_at"])
    # the records it was drawn from: as known on the date it was asked for, else as they
    # stood at the instant it was drawn
    known: dt.date | dt.datetime = (dt.date.fromisoformat(args["as_known_on"])
                                    if args.get("as_known_on") else drawn_at)
    spec = dict(args["scenario"])
    spec["capacity"] = tuple(CapacityLine(**c) for c in spec.get("capacity", ()))
    draft = draft_extension_request(
        store, scenario=Scenario(**spec),
        as_of=None if args["as_of"] is None else dt.date.fromisoformat(args["as_of"]),
        group=args["group"], years=args["years"], verify=args.get("verify", True),
        ledger=ledger_as_known_on(store, known))
    filed = json.loads(entry["figures"])
    now = figures_of(draft.figures)
    changed = [k for k in filed if filed[k] != now.get(k)]
    return Reproduction(document_id, draft, _digest(now) == entry["figures_sha256"], changed,
                        _changes_since(store, drawn_at))


def _changes_since(store: Store, when: dt.datetime) -> list[str]:
    """The imports and retractions after ``when``, in words."""
    imports = store.imports()
    out = []
    stamp = pd.Timestamp(when)
    for r in imports.to_dict(orient="records"):
        if pd.Timestamp(r["imported_at"]) > stamp:
            out.append(f"import {r['import_id']} ({r['file_name']}, {r['rows']} {r['layer']}) "
                       f"made {r['imported_at']}")
        retracted = r.get("retracted_at")
        if retracted is not None and retracted == retracted and pd.Timestamp(retracted) > stamp:
            out.append(f"import {r['import_id']} ({r['file_name']}) retracted {retracted} by "
                       f"{r.get('retracted_by')}: {r.get('retraction_reason')}")
    return out
