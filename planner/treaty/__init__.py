"""The Convention's arithmetic of time and duty: deadlines (Article 4(1), 4(5)-(8)), the
completion forecast, the Article 4(6) extension request and the Article 7 report."""

from planner.treaty.article7 import article7_report
from planner.treaty.deadlines import deadline_groups, deadline_report
from planner.treaty.extension import ExtensionDraft, draft_extension_request
from planner.treaty.forecast import Scenario, forecast

__all__ = ["ExtensionDraft", "Scenario", "article7_report", "deadline_groups", "deadline_report",
           "draft_extension_request", "forecast"]
