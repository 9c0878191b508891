"""The work around an opportunity: 立项, team, competitors, key dates, objections, quotes,
activities."""

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from loudou.api.schemas.common import (
    Amount,
    Currency,
    CursorMeta,
    Day,
    Id,
    In,
    Name120,
    Named,
    PageMeta,
    Str60,
    Str120,
    Str200,
    Text,
    UserRef,
    user_ref,
)
from loudou.core.i18n import localized
from loudou.pipeline.models import (
    Activity,
    KeyDate,
    Objection,
    OpportunityCompetitor,
    ProjectApproval,
    Quote,
    TeamMember,
)


class OpportunityRef(Schema):
    id: int
    name: str
    account: str


class ApprovalOut(Schema):
    id: int
    opportunity: OpportunityRef
    status: Literal["pending", "approved", "rejected", "withdrawn"]
    requested_by: UserRef
    requested_at: dt.datetime
    requirement: str
    budget: Decimal
    timeline: str
    selection_team: str
    competition: str
    strategy: str
    decided_by: UserRef | None
    decided_at: dt.datetime | None
    comment: str


class ApprovalIn(In):
    requirement: Text = Field(min_length=1)
    budget: Amount
    timeline: Text = Field(min_length=1)
    selection_team: Text = Field(min_length=1)
    competition: Text = ""
    strategy: Text = ""


class DecisionIn(In):
    approve: bool
    comment: Text = Field(default="", description="Required when rejecting.")


class TeamMemberOut(Schema):
    id: int
    user: UserRef
    role: Named
    added_at: dt.datetime


class TeamMemberIn(In):
    user_id: Id
    role: Str60 = Field(description="Role key (see /roles).")


class CompetitorRef(Schema):
    id: int
    name: str
    kind: Literal["vendor", "consultant"]


class DealCompetitorOut(Schema):
    id: int
    competitor: CompetitorRef
    notes: str
    active: bool


class DealCompetitorIn(In):
    name: Name120
    kind: Literal["vendor", "consultant"] = "vendor"
    notes: Text = ""


class DealCompetitorPatch(In):
    notes: Text | None = None
    active: bool | None = Field(default=None, description="False: out of the running.")


class KeyDateOut(Schema):
    id: int
    kind: Literal["bid", "negotiation", "signing", "custom"]
    label: str
    planned: dt.date
    actual: dt.date | None


class KeyDateIn(In):
    kind: Literal["bid", "negotiation", "signing", "custom"]
    planned: Day
    actual: Day | None = None
    label: Str120 = Field(default="", description="Required for custom dates.")


class ObjectionOut(Schema):
    id: int
    text: str
    status: Literal["queued", "answered"]
    raised_at: dt.datetime
    raised_by: UserRef
    answer: str
    answered_by: UserRef | None
    answered_at: dt.datetime | None


class ObjectionIn(In):
    text: Text = Field(min_length=1)


class AnswerIn(In):
    answer: Text = Field(min_length=1)


class QuoteLineOut(Schema):
    id: int
    category: Literal["software", "implementation", "services"]
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    net_amount: Decimal


class QuoteTotals(Schema):
    software: Decimal
    implementation: Decimal
    services: Decimal
    total: Decimal


class QuoteOut(Schema):
    id: int
    kind: Literal["preliminary", "formal"]
    version: int
    currency: str
    notes: str
    created_by: UserRef
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    lines: list[QuoteLineOut]
    totals: QuoteTotals


class QuoteLineIn(In):
    category: Literal["software", "implementation", "services"]
    description: Str200 = Field(min_length=1)
    quantity: Decimal = Field(default=Decimal(1), gt=0, max_digits=12, decimal_places=2)
    unit_price: Amount
    discount_percent: Decimal = Field(
        default=Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2
    )


class QuoteIn(In):
    kind: Literal["preliminary", "formal"]
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=500)
    currency: Currency | None = None
    notes: Text = ""
    submit: bool = Field(default=False, description="Submit to the customer at once.")


ActivityKind = Literal["call", "visit", "presentation", "demo", "meeting", "task"]


class ActivityOut(Schema):
    id: int
    opportunity_id: int
    kind: ActivityKind
    subject: str
    notes: str
    owner: UserRef
    due_on: dt.date
    done_at: dt.datetime | None
    outcome: str
    created_at: dt.datetime


class ActivityListed(ActivityOut):
    opportunity_name: str


class ActivityPage(PageMeta):
    results: list[ActivityListed]


class ActivityCursorPage(CursorMeta):
    results: list[ActivityListed]


class ActivityIn(In):
    kind: ActivityKind
    subject: Str200 = Field(min_length=1)
    due_on: Day
    owner_id: Id | None = Field(default=None, description="Default: you.")
    notes: Text = ""


class CompleteIn(In):
    outcome: Text = ""


def approval_out(a: ProjectApproval) -> dict[str, Any]:
    opp = a.opportunity
    return {
        "id": a.pk,
        "opportunity": {"id": opp.pk, "name": opp.name, "account": opp.account.name},
        "status": a.status,
        "requested_by": user_ref(a.requested_by),
        "requested_at": a.requested_at,
        "requirement": a.requirement,
        "budget": a.budget,
        "timeline": a.timeline,
        "selection_team": a.selection_team,
        "competition": a.competition,
        "strategy": a.strategy,
        "decided_by": user_ref(a.decided_by),
        "decided_at": a.decided_at,
        "comment": a.comment,
    }


def team_member_out(m: TeamMember) -> dict[str, Any]:
    return {
        "id": m.pk,
        "user": user_ref(m.user),
        "role": {"key": m.role.key, "name": localized(m.role, "name")},
        "added_at": m.added_at,
    }


def deal_competitor_out(row: OpportunityCompetitor) -> dict[str, Any]:
    c = row.competitor
    return {
        "id": row.pk,
        "competitor": {"id": c.pk, "name": c.name, "kind": c.kind},
        "notes": row.notes,
        "active": row.active,
    }


def key_date_out(k: KeyDate) -> dict[str, Any]:
    return {"id": k.pk, "kind": k.kind, "label": k.label, "planned": k.planned, "actual": k.actual}


def objection_out(o: Objection) -> dict[str, Any]:
    return {
        "id": o.pk,
        "text": o.text,
        "status": o.status,
        "raised_at": o.raised_at,
        "raised_by": user_ref(o.raised_by),
        "answer": o.answer,
        "answered_by": user_ref(o.answered_by),
        "answered_at": o.answered_at,
    }


def quote_out(q: Quote) -> dict[str, Any]:
    lines = list(q.lines.all())
    return {
        "id": q.pk,
        "kind": q.kind,
        "version": q.version,
        "currency": q.currency,
        "notes": q.notes,
        "created_by": user_ref(q.created_by),
        "created_at": q.created_at,
        "submitted_at": q.submitted_at,
        "lines": [
            {
                "id": line.pk,
                "category": line.category,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount_percent": line.discount_percent,
                "net_amount": line.net_amount,
            }
            for line in lines
        ],
        "totals": q.totals(),
    }


def activity_out(a: Activity) -> dict[str, Any]:
    return {
        "id": a.pk,
        "opportunity_id": a.opportunity_id,
        "kind": a.kind,
        "subject": a.subject,
        "notes": a.notes,
        "owner": user_ref(a.owner),
        "due_on": a.due_on,
        "done_at": a.done_at,
        "outcome": a.outcome,
        "created_at": a.created_at,
    }
