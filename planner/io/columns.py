"""Column spellings seen in programme exports, mapped to planner's model.

Names are compared normalised (:func:`norm_key`: lower case, letters and digits only), so
``HAZ_CODE``, ``Haz Code`` and ``hazcode`` are one spelling. Shapefiles cut column names to
10 characters; those spellings are listed too.
"""

from __future__ import annotations

# Spellings seen in programme exports, normalised (lower case, letters and digits only).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "hazard_id": ("hazardid", "hazard", "hazardcode", "hazcode", "hazid", "shaid", "chaid",
                  "areaid", "code", "nationalcode", "imsmaid", "localid", "id", "kenmerk",
                  "name"),
    "release_id": ("releaseid", "release", "releasecode", "taskid", "task", "taskcode",
                   "activityid", "id", "kenmerk", "name"),
    "status": ("status", "hazardtype", "type", "category", "classification", "shacha"),
    "recorded_on": ("recordedo", "recordedon", "recorded", "daterecorded", "recorddate",
                    "surveydate", "surveydt", "datesurvey",
                    "datesurveyed", "date", "datum", "datum1", "reportdate", "datefound"),
    "released_on": ("releasedo", "releasedon", "released", "releasedate", "daterelease",
                    "completiondate", "datecompleted", "completedon", "clearancedate",
                    "enddate", "date", "datum1", "datum"),
    "found_after_eif": ("foundafte", "foundaftereif", "aftereif", "discoveredaftereif", "new"),
    "region": ("region", "province", "district", "admin1", "adm1", "area", "municipality",
               "gemeente"),
    "munition_type": ("munitiont", "munitiontype", "munition", "cmtype", "submunition",
                      "ordnancetype", "subsoort", "hoofdgroep"),
    "method": ("method", "releasemethod", "releasetype", "landrelease", "activity",
               "soorthand"),
    "organisation": ("organisati", "organisation", "organization", "operator", "org", "agency",
                     "implementingpartner"),
    "items_destroyed": ("itemsdest", "itemsdestroyed", "items", "itemsfound", "cmrdestroyed",
                        "submunitionsdestroyed", "destroyed"),
    "depth_cm": ("depthcm", "depth", "clearancedepth", "clearancedepthcm"),
}

STATUS_SPELLINGS: dict[str, str] = {
    "sha": "SHA", "suspected": "SHA", "suspectedhazardousarea": "SHA", "suspectedarea": "SHA",
    "verdacht": "SHA",
    "cha": "CHA", "confirmed": "CHA", "confirmedhazardousarea": "CHA", "confirmedarea": "CHA",
}

METHOD_SPELLINGS: dict[str, str] = {
    "cancelled": "cancelled", "canceled": "cancelled", "cancellation": "cancelled",
    "cancel": "cancelled", "nts": "cancelled", "nontechnicalsurvey": "cancelled",
    "reduced": "reduced", "reduction": "reduced", "reduce": "reduced", "ts": "reduced",
    "technicalsurvey": "reduced",
    "cleared": "cleared", "clearance": "cleared", "clear": "cleared", "cleared/": "cleared",
    "bac": "cleared", "battleareaclearance": "cleared",
}


def norm_key(text: str) -> str:
    """Lower case, letters and digits only: ``"Hazard ID"`` -> ``"hazardid"``.

    Examples
    --------
    >>> norm_key("Released_On ")
    'releasedon'
    """
    return "".join(ch for ch in str(text).lower() if ch.isalnum())
