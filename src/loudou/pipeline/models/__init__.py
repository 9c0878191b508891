"""Pipeline models, by sub-domain: the opportunity and its history; the project work around it."""

from loudou.pipeline.models.activities import Activity, ActivityKind
from loudou.pipeline.models.opportunity import (
    CriterionEvidence,
    GateOverride,
    LostReason,
    Opportunity,
    OpportunityHistory,
    Status,
)
from loudou.pipeline.models.project import (
    ApprovalStatus,
    Competitor,
    CompetitorKind,
    KeyDate,
    KeyDateKind,
    Objection,
    ObjectionStatus,
    OpportunityCompetitor,
    ProjectApproval,
    TeamMember,
)
from loudou.pipeline.models.quotes import Quote, QuoteKind, QuoteLine, QuoteLineCategory

__all__ = [
    "Activity",
    "ActivityKind",
    "ApprovalStatus",
    "Competitor",
    "CompetitorKind",
    "CriterionEvidence",
    "GateOverride",
    "KeyDate",
    "KeyDateKind",
    "LostReason",
    "Objection",
    "ObjectionStatus",
    "Opportunity",
    "OpportunityCompetitor",
    "OpportunityHistory",
    "ProjectApproval",
    "Quote",
    "QuoteKind",
    "QuoteLine",
    "QuoteLineCategory",
    "Status",
    "TeamMember",
]
