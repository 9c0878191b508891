"""Opportunities: list, detail with gate progress, create, update, and the stage operations."""

from typing import Any, Literal

from django.db.models import Q
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from loudou.api.auth import ApiRequest
from loudou.api.pagination import Ordering, Paging, asc, desc, page_or_cursor
from loudou.api.schemas.common import (
    CURSOR,
    PAGE,
    PAGE_SIZE,
    Day,
    Id,
    Str40,
    Str60,
    Str200,
    user_ref,
)
from loudou.api.schemas.pipeline import (
    AdvanceIn,
    CriterionStateOut,
    EvidenceIn,
    EvidenceOut,
    HistoryOut,
    LoseIn,
    OpportunityCursorPage,
    OpportunityDetail,
    OpportunityIn,
    OpportunityPage,
    OpportunityPatch,
    ReassignIn,
    RegressIn,
    ReopenIn,
    WinIn,
    history_out,
    opportunity_out,
)
from loudou.api.selectors import account_for_write, branch_ids_for, user_by_id
from loudou.core.errors import NotFound, ValidationFailed
from loudou.pipeline import services as ps
from loudou.pipeline.gates import criteria_states
from loudou.pipeline.models import Opportunity
from loudou.pipeline.selectors import gate_progress, opportunity_get, opportunity_list
from loudou.playbooks.models import StageKind
from loudou.playbooks.selectors import playbook_get

router = Router(tags=["opportunities"])

OpportunitySort = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "close_date",
    "-close_date",
    "amount",
    "-amount",
    "name",
    "-name",
    "stage",
    "-stage",
]
SORT_FIELDS = {"stage": "stage__order", "-stage": "-stage__order"}
# Each sort's full order: ties broken by id, newest (highest) first.
OPPORTUNITY_ORDER: dict[str, Ordering] = {
    sort: (
        desc(SORT_FIELDS.get(sort, sort)[1:])
        if sort.startswith("-")
        else asc(SORT_FIELDS.get(sort, sort)),
        desc("id"),
    )
    for sort in OpportunitySort.__args__  # type: ignore[attr-defined]
}


class OpportunityFilters(Schema):
    q: Str200 | None = Field(default=None, description="Part of the name or the account's name.")
    stage: Str60 | None = Field(default=None, description="Stage key.")
    status: Literal["open", "won", "lost"] | None = None
    owner_id: Id | None = None
    branch: Str40 | None = Field(default=None, description="Branch code, with the branches below.")
    industry: Str40 | None = Field(default=None, description="The account's industry key.")
    account_id: Id | None = None
    playbook: Str60 | None = Field(default=None, description="Playbook key (every version).")
    close_from: Day | None = Field(default=None, description="Expected close on or after.")
    close_to: Day | None = Field(default=None, description="Expected close on or before.")
    sort: OpportunitySort = "-created_at"
    page: int = PAGE
    page_size: int = PAGE_SIZE
    cursor: str | None = CURSOR


def detail(user: Any, pk: int) -> dict[str, Any]:
    """The opportunity as `user` sees it, with the progress towards its next gate."""
    opp = opportunity_get(user, pk)
    return opportunity_out(opp) | {"need": opp.need, "gate": gate_progress(opp)}


def after_write(opp: Opportunity) -> dict[str, Any]:
    """The opportunity a service just wrote (the actor passed its visibility check)."""
    fresh = Opportunity.objects.select_related(
        "account", "owner", "branch", "stage", "playbook", "lost_reason", "lost_to"
    ).get(pk=opp.pk)
    return opportunity_out(fresh) | {"need": fresh.need, "gate": gate_progress(fresh)}


def opportunities_filtered(user: Any, filters: Any) -> Any:
    """The opportunities `user` may see that match the list's filters (unordered): the list and
    its export (`routers/exports.py`) read the same rows."""
    qs = opportunity_list(
        user,
        status=filters.status,
        stage=filters.stage,
        playbook=filters.playbook,
        owner_id=filters.owner_id,
    ).select_related("lost_reason", "lost_to")
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q) | Q(account__name__icontains=filters.q))
    branch_ids = branch_ids_for(filters.branch)
    if branch_ids is not None:
        qs = qs.filter(branch_id__in=branch_ids)
    if filters.industry:
        qs = qs.filter(account__industry__key=filters.industry)
    if filters.account_id:
        qs = qs.filter(account_id=filters.account_id)
    if filters.close_from:
        qs = qs.filter(close_date__gte=filters.close_from)
    if filters.close_to:
        qs = qs.filter(close_date__lte=filters.close_to)
    return qs


@router.get(
    "",
    response=OpportunityPage | OpportunityCursorPage,
    summary="List the opportunities you may see",
)
def opportunity_search(request: ApiRequest, filters: Query[OpportunityFilters]) -> Any:
    """Opportunities visible to you, filtered, sorted (newest first by default), by page or by
    cursor."""
    qs = opportunities_filtered(request.auth, filters)
    paging = Paging("opportunities", filters.sort, OPPORTUNITY_ORDER[filters.sort])
    return page_or_cursor(qs, filters, paging, opportunity_out)


@router.post("", response={201: OpportunityDetail}, summary="Open an opportunity")
def opportunity_new(request: ApiRequest, payload: OpportunityIn) -> Any:
    """Open an opportunity at the playbook's first open stage, through its gate (evidence given
    here counts; a manager may pass missing criteria with `override_reason`)."""
    data = payload.model_dump()
    account = account_for_write(request.auth, data.pop("account_id"), field="account_id")
    owner = user_by_id(data.pop("owner_id"), field="owner_id")
    try:
        playbook = playbook_get(data.pop("playbook"))
    except NotFound:
        raise ValidationFailed(
            _("No such playbook: %(key)s.") % {"key": payload.playbook},
            details={"playbook": "unknown"},
        ) from None
    opp = ps.opportunity_create(
        actor=request.auth,
        account=account,
        owner=owner,
        playbook=playbook,
        currency=data.pop("currency") or "",
        **data,
    )
    return Status(201, after_write(opp))


@router.get("/{opportunity_id}", response=OpportunityDetail, summary="One opportunity")
def opportunity_detail(request: ApiRequest, opportunity_id: Id) -> Any:
    """The opportunity with the criteria of its next stage and how many hold."""
    return detail(request.auth, opportunity_id)


@router.patch("/{opportunity_id}", response=OpportunityDetail, summary="Change an opportunity")
def opportunity_change(request: ApiRequest, opportunity_id: Id, payload: OpportunityPatch) -> Any:
    """Change the fields sent of an open opportunity; `expected_version` is required."""
    changes = payload.model_dump(exclude_unset=True)
    expected = changes.pop("expected_version")
    reason = changes.pop("reason", "")
    for field in ("need", "source"):
        if field in changes and changes[field] is None:
            changes[field] = ""
    opp = ps.opportunity_update(
        opportunity=opportunity_id,
        actor=request.auth,
        expected_version=expected,
        reason=reason,
        **changes,
    )
    return after_write(opp)


@router.post("/{opportunity_id}/advance", response=OpportunityDetail, summary="Advance a stage")
def opportunity_advance(request: ApiRequest, opportunity_id: Id, payload: AdvanceIn) -> Any:
    """Move to a later open stage if every required criterion of the stages entered holds; a
    refusal is 409 `gate_refused` listing the `missing` criteria, and changes nothing."""
    opp = ps.opportunity_advance(
        opportunity=opportunity_id, actor=request.auth, **payload.model_dump()
    )
    return after_write(opp)


@router.post("/{opportunity_id}/regress", response=OpportunityDetail, summary="Move back a stage")
def opportunity_regress(request: ApiRequest, opportunity_id: Id, payload: RegressIn) -> Any:
    """Move back to an earlier open stage, with a reason."""
    opp = ps.opportunity_regress(
        opportunity=opportunity_id, actor=request.auth, **payload.model_dump()
    )
    return after_write(opp)


@router.post("/{opportunity_id}/win", response=OpportunityDetail, summary="Win (close the sale)")
def opportunity_win(request: ApiRequest, opportunity_id: Id, payload: WinIn) -> Any:
    """Enter the won stage through its gate (and those of the stages skipped)."""
    opp = ps.opportunity_win(opportunity=opportunity_id, actor=request.auth, **payload.model_dump())
    return after_write(opp)


@router.post("/{opportunity_id}/lose", response=OpportunityDetail, summary="Mark lost")
def opportunity_lose(request: ApiRequest, opportunity_id: Id, payload: LoseIn) -> Any:
    """Mark the opportunity lost at its stage with a lost reason key and, if known, who won."""
    opp = ps.opportunity_lose(
        opportunity=opportunity_id, actor=request.auth, **payload.model_dump()
    )
    return after_write(opp)


@router.post("/{opportunity_id}/reopen", response=OpportunityDetail, summary="Reopen")
def opportunity_reopen(request: ApiRequest, opportunity_id: Id, payload: ReopenIn) -> Any:
    """Reopen a lost opportunity (or, for managers, a won one), with a reason."""
    opp = ps.opportunity_reopen(
        opportunity=opportunity_id, actor=request.auth, **payload.model_dump()
    )
    return after_write(opp)


@router.post("/{opportunity_id}/reassign", response=OpportunityDetail, summary="Change the owner")
def opportunity_reassign(request: ApiRequest, opportunity_id: Id, payload: ReassignIn) -> Any:
    """Give the opportunity to another seller (managers of both branches)."""
    data = payload.model_dump()
    owner = user_by_id(data.pop("owner_id"), field="owner_id")
    opp = ps.opportunity_reassign(
        opportunity=opportunity_id, actor=request.auth, owner=owner, **data
    )
    return after_write(opp)


@router.post(
    "/{opportunity_id}/evidence", response={201: EvidenceOut}, summary="Record criterion evidence"
)
def evidence_new(request: ApiRequest, opportunity_id: Id, payload: EvidenceIn) -> Any:
    """Record that a `check` criterion holds (or, with `satisfied: false`, no longer holds)."""
    row = ps.evidence_record(opportunity=opportunity_id, actor=request.auth, **payload.model_dump())
    return Status(
        201,
        {
            "id": row.pk,
            "criterion": f"{row.criterion.stage.key}.{row.criterion.key}",
            "satisfied": row.satisfied,
            "note": row.note,
            "actor": user_ref(row.actor),
            "recorded_at": row.recorded_at,
        },
    )


@router.get(
    "/{opportunity_id}/criteria",
    response=list[CriterionStateOut],
    summary="Every stage's criteria for this opportunity",
)
def criteria_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """Each criterion of the playbook's opportunity stages, in funnel order, and whether it
    holds for this opportunity now."""
    opp = opportunity_get(request.auth, opportunity_id)
    stages = [s for s in opp.playbook.ordered_stages() if s.kind != StageKind.ACCOUNT]
    return [state.as_dict() for state in criteria_states(opp, stages)]


@router.get("/{opportunity_id}/history", response=list[HistoryOut], summary="History")
def history_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """Every change of the tracked fields, oldest first (append-only)."""
    opp = opportunity_get(request.auth, opportunity_id)
    rows = opp.history.select_related("stage", "actor").order_by("valid_from", "id")
    return [history_out(row) for row in rows]
