"""Opportunities, their stage operations, gates and history."""

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from loudou.api.schemas.common import (
    Amount,
    BranchRef,
    Currency,
    CursorMeta,
    Day,
    Id,
    In,
    Name200,
    PageMeta,
    Percent,
    StageRef,
    Str60,
    Str120,
    Text,
    UserRef,
    Version,
    branch_ref,
    stage_ref,
    user_ref,
)
from loudou.core.i18n import localized
from loudou.pipeline.models import Opportunity, OpportunityHistory

Evidence = dict[Str120, Text]
EVIDENCE_HELP = (
    "Criterion key (or stage.criterion) → what the customer said or did; recorded before the "
    "gate is checked."
)
VERSION_HELP = "The version you read; a stale one is refused with 409 and the current version."


class AccountRef(Schema):
    id: int
    name: str


class PlaybookRef(Schema):
    key: str
    version: int


class CriterionStateOut(Schema):
    stage: str
    key: str
    kind: str
    required: bool
    text: str
    holds: bool
    reason: str


class NextStage(Schema):
    key: str
    name: str


class GateProgress(Schema):
    next_stage: NextStage | None
    criteria: list[CriterionStateOut]
    held: int = Field(description="Required criteria of the next stage that hold.")
    required: int


class OpportunityOut(Schema):
    id: int
    name: str
    account: AccountRef
    owner: UserRef
    branch: BranchRef
    playbook: PlaybookRef
    stage: StageRef
    status: Literal["open", "won", "lost"]
    amount: Decimal
    currency: str
    budget: Decimal | None
    probability: int
    probability_override: int | None
    weighted_amount: Decimal
    forecast_category: str
    close_date: dt.date
    closed_on: dt.date | None
    source: str
    lost_reason: str | None = Field(description="Lost reason key.")
    lost_to: str | None = Field(description="The competitor who won.")
    stage_entered_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class OpportunityDetail(OpportunityOut):
    need: str
    gate: GateProgress


class OpportunityPage(PageMeta):
    results: list[OpportunityOut]


class OpportunityCursorPage(CursorMeta):
    results: list[OpportunityOut]


class OpportunityIn(In):
    account_id: Id
    name: Name200
    amount: Amount
    close_date: Day
    currency: Currency | None = None
    owner_id: Id | None = Field(
        default=None, description="Default: you (managers may name another)."
    )
    playbook: Str60 | None = Field(
        default=None, description="Playbook key; default playbook if unset."
    )
    need: Text = ""
    source: Str120 = ""
    budget: Amount | None = None
    probability_override: Percent | None = None
    evidence: Evidence = Field(default_factory=dict, description=EVIDENCE_HELP)
    override_reason: Text = Field(
        default="", description="A manager's reason to pass missing criteria."
    )


class OpportunityPatch(In):
    expected_version: Version = Field(description=VERSION_HELP)
    reason: Text = ""
    name: Name200 | None = None
    need: Text | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    budget: Amount | None = None
    close_date: Day | None = None
    probability_override: Percent | None = None
    source: Str120 | None = None


class AdvanceIn(In):
    to_stage: Str60 = Field(description="Key of a later open stage.")
    evidence: Evidence = Field(default_factory=dict, description=EVIDENCE_HELP)
    expected_version: Version | None = Field(default=None, description=VERSION_HELP)
    override_reason: Text = Field(
        default="", description="A manager's reason to pass missing criteria."
    )


class RegressIn(In):
    to_stage: Str60 = Field(description="Key of an earlier open stage.")
    reason: Text
    expected_version: Version | None = Field(default=None, description=VERSION_HELP)


class WinIn(In):
    evidence: Evidence = Field(default_factory=dict, description=EVIDENCE_HELP)
    expected_version: Version | None = Field(default=None, description=VERSION_HELP)
    override_reason: Text = ""
    amount: Amount | None = Field(default=None, description="The signed amount, if it changed.")
    closed_on: Day | None = None


class LoseIn(In):
    reason: Str60 = Field(description="Lost reason key (see /lost-reasons).")
    note: Text = ""
    lost_to: Str120 | None = Field(default=None, description="Name of the competitor who won.")
    expected_version: Version | None = Field(default=None, description=VERSION_HELP)
    closed_on: Day | None = None


class ReopenIn(In):
    reason: Text
    expected_version: Version | None = Field(default=None, description=VERSION_HELP)


class ReassignIn(In):
    owner_id: Id
    reason: Text = ""
    expected_version: Version | None = Field(default=None, description=VERSION_HELP)


class EvidenceIn(In):
    criterion: Str120 = Field(description="Criterion key, or stage.criterion.")
    note: Text
    satisfied: bool = Field(default=True, description="False records that it no longer holds.")


class EvidenceOut(Schema):
    id: int
    criterion: str = Field(description="stage.criterion")
    satisfied: bool
    note: str
    actor: UserRef | None
    recorded_at: dt.datetime


class HistoryOut(Schema):
    valid_from: dt.datetime
    action: str
    changed: list[str]
    stage: str
    status: str
    amount: Decimal
    currency: str
    close_date: dt.date
    probability: int
    owner_id: int
    forecast_category: str
    actor: UserRef | None
    reason: str


def opportunity_out(opp: Opportunity) -> dict[str, Any]:
    return {
        "id": opp.pk,
        "name": opp.name,
        "account": {"id": opp.account_id, "name": opp.account.name},
        "owner": user_ref(opp.owner),
        "branch": branch_ref(opp.branch),
        "playbook": {"key": opp.playbook.key, "version": opp.playbook.version},
        "stage": stage_ref(opp.stage),
        "status": opp.status,
        "amount": opp.amount,
        "currency": opp.currency,
        "budget": opp.budget,
        "probability": opp.probability,
        "probability_override": opp.probability_override,
        "weighted_amount": opp.weighted_amount,
        "forecast_category": opp.forecast_category,
        "close_date": opp.close_date,
        "closed_on": opp.closed_on,
        "source": opp.source,
        "lost_reason": opp.lost_reason.key if opp.lost_reason_id and opp.lost_reason else None,
        "lost_to": opp.lost_to.name if opp.lost_to_id and opp.lost_to else None,
        "stage_entered_at": opp.stage_entered_at,
        "created_at": opp.created_at,
        "updated_at": opp.updated_at,
        "version": opp.version,
    }


def history_out(row: OpportunityHistory) -> dict[str, Any]:
    return {
        "valid_from": row.valid_from,
        "action": row.action,
        "changed": row.changed,
        "stage": row.stage.key,
        "status": row.status,
        "amount": row.amount,
        "currency": row.currency,
        "close_date": row.close_date,
        "probability": row.probability,
        "owner_id": row.owner_id,
        "forecast_category": row.forecast_category,
        "actor": user_ref(row.actor),
        "reason": row.reason,
    }


def stage_name(stage: Any) -> str:
    return localized(stage, "name")
