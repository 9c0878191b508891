"""Every write to the pipeline, as named services (DESIGN.md rule 1).

Import from here: `from loudou.pipeline.services import opportunity_advance`.
"""

from loudou.pipeline.services.activities import activity_complete, activity_plan
from loudou.pipeline.services.approvals import approval_decide, approval_request, approval_withdraw
from loudou.pipeline.services.evidence import evidence_record
from loudou.pipeline.services.opportunities import (
    opportunity_create,
    opportunity_reassign,
    opportunity_update,
)
from loudou.pipeline.services.project import (
    competitor_add,
    competitor_update,
    key_date_set,
    objection_answer,
    objection_raise,
    team_member_add,
    team_member_remove,
)
from loudou.pipeline.services.quotes import quote_create, quote_submit
from loudou.pipeline.services.stages import (
    opportunity_advance,
    opportunity_lose,
    opportunity_regress,
    opportunity_reopen,
    opportunity_win,
)

__all__ = [
    "activity_complete",
    "activity_plan",
    "approval_decide",
    "approval_request",
    "approval_withdraw",
    "competitor_add",
    "competitor_update",
    "evidence_record",
    "key_date_set",
    "objection_answer",
    "objection_raise",
    "opportunity_advance",
    "opportunity_create",
    "opportunity_lose",
    "opportunity_reassign",
    "opportunity_regress",
    "opportunity_reopen",
    "opportunity_update",
    "opportunity_win",
    "quote_create",
    "quote_submit",
    "team_member_add",
    "team_member_remove",
]
